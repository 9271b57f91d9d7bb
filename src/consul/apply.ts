/** The apply step (consul.md §2, §5): turns a usable listing into the next immutable KV state, key by key,
 *  against the live one. Owns the per-key rules — same ModifyIndex reuses the same objects, same bytes under a
 *  new index is bookkeeping only, a changed value is parsed alone and a bad one keeps the previous version —
 *  and reports what changed for checkups as UpstreamChanges. Pure: the watch feeds it, the primary installs
 *  the result; the deletion guard (held removals) and script compilation plug in through options. */

import { isUtf8 } from 'node:buffer'
import { createHash } from 'node:crypto'
import JSON5 from 'json5'
import {
  parseUpstreamJson,
  streamUpstreamName,
  type UpstreamChange,
  type UpstreamDefaults,
  type UpstreamDefinition,
} from '../checkups/index.js'
import { classifyKey, type KeyClass, type KeyLayout, type ScriptRuntime } from './keys.js'
import type { KvEntry, Listing } from './watch.js'

/** A key whose value is being served, with what it parsed to. */
export type ServedValue =
  | { readonly kind: 'upstream'; readonly name: string; readonly definition: UpstreamDefinition }
  | { readonly kind: 'script'; readonly runtime: ScriptRuntime; readonly name: string; readonly source: string; readonly isStaged: boolean }
  | { readonly kind: 'commit_version'; readonly runtime: ScriptRuntime; readonly version: string }
  | { readonly kind: 'dynamic'; readonly name: string; readonly value: unknown }

export interface ServedKey {
  readonly entry: KvEntry
  readonly value: ServedValue
}

export interface KeyRejection {
  readonly key: string
  readonly modifyIndex: bigint
  readonly message: string
  /** Lower-case hex md5 of the rejected bytes: a script's version in GET /lua|/js `errors` (scripts.md §2). */
  readonly valueMd5: string
}

/** Everything the live config knows about the KV prefix. Replaced whole, never edited. */
export interface KvState {
  readonly index: bigint
  readonly served: ReadonlyMap<string, ServedKey>
  /** Newest rejected value per key; cleared when the key is fixed or deleted. */
  readonly rejections: ReadonlyMap<string, KeyRejection>
}

const EMPTY_VALUE = Buffer.alloc(0)

export const EMPTY_KV_STATE: KvState = Object.freeze({ index: 0n, served: new Map(), rejections: new Map() })

export interface ApplyOptions {
  readonly layout: KeyLayout
  readonly upstreamDefaults: UpstreamDefaults
  /** Compile check for an active script; returns the compiler's message, or null when it compiles. */
  readonly compileScript?: (runtime: ScriptRuntime, name: string, source: string) => string | null
}

export interface ApplyResult {
  readonly next: KvState
  /** For checkups: upstreams (HTTP by name, stream as `stream:<port>`) to set or delete. */
  readonly upstreamChanges: readonly UpstreamChange[]
  /** Keys whose served value was added, replaced or removed. Empty means nothing served changed. */
  readonly changedKeys: readonly string[]
  /** Rejections seen for the first time at their ModifyIndex: log each once. */
  readonly newRejections: readonly KeyRejection[]
}

export function applyListing(previous: KvState, listing: Listing, options: ApplyOptions): ApplyResult {
  const served = new Map<string, ServedKey>()
  const rejections = new Map<string, KeyRejection>()
  const upstreamChanges: UpstreamChange[] = []
  const changedKeys: string[] = []
  const newRejections: KeyRejection[] = []
  const present = new Set<string>()

  for (const entry of listing.entries) {
    const keyClass = classifyKey(entry.key, options.layout)
    if (keyClass.kind === 'ignored') continue
    // An emptied key counts as deleted, as in Slardar (consul.md §1).
    if (entry.value === null) continue
    present.add(entry.key)
    const before = previous.served.get(entry.key)
    if (before !== undefined && before.entry.modifyIndex === entry.modifyIndex) {
      served.set(entry.key, before)
      continue
    }
    if (before !== undefined && hasSameBytes(before.entry, entry)) {
      served.set(entry.key, { entry, value: before.value })
      continue
    }
    const earlierRejection = previous.rejections.get(entry.key)
    if (earlierRejection !== undefined && earlierRejection.modifyIndex === entry.modifyIndex) {
      rejections.set(entry.key, earlierRejection)
      if (before !== undefined) served.set(entry.key, before)
      continue
    }
    const parsed = parseEntry(entry, keyClass, options)
    if (parsed.ok) {
      served.set(entry.key, { entry, value: parsed.value })
      changedKeys.push(entry.key)
      if (parsed.value.kind === 'upstream') upstreamChanges.push({ kind: 'set', name: parsed.value.name, definition: parsed.value.definition })
    } else {
      const valueMd5 = createHash('md5').update(entry.value ?? EMPTY_VALUE).digest('hex')
      const rejection = { key: entry.key, modifyIndex: entry.modifyIndex, message: parsed.message, valueMd5 }
      rejections.set(entry.key, rejection)
      newRejections.push(rejection)
      if (before !== undefined) served.set(entry.key, before)
    }
  }

  for (const [key, before] of previous.served) {
    if (present.has(key)) continue
    changedKeys.push(key)
    if (before.value.kind === 'upstream') upstreamChanges.push({ kind: 'delete', name: before.value.name })
  }

  return { next: Object.freeze({ index: listing.index, served, rejections }), upstreamChanges, changedKeys, newRejections }
}

/** Index bookkeeping only (consul.md §5): an idempotent rewrite must not reset health or balancer state. */
function hasSameBytes(live: KvEntry, incoming: KvEntry): boolean {
  return live.flags === incoming.flags && live.value !== null && incoming.value !== null && live.value.equals(incoming.value)
}

type Parsed = { readonly ok: true; readonly value: ServedValue } | { readonly ok: false; readonly message: string }

function parseEntry(entry: KvEntry, keyClass: Exclude<KeyClass, { kind: 'ignored' }>, options: ApplyOptions): Parsed {
  if (keyClass.kind === 'invalid') return { ok: false, message: keyClass.message }
  const bytes = entry.value as Buffer
  if (!isUtf8(bytes)) return { ok: false, message: `${entry.key}: value is not valid UTF-8` }
  const text = bytes.toString('utf8')
  switch (keyClass.kind) {
    case 'http_upstream':
    case 'stream_upstream': {
      const isStream = keyClass.kind === 'stream_upstream'
      const result = parseUpstreamJson(entry.key, text, options.upstreamDefaults, { stream: isStream })
      if (!result.ok) return { ok: false, message: result.message }
      const name = keyClass.kind === 'http_upstream' ? keyClass.name : streamUpstreamName(keyClass.port)
      return { ok: true, value: { kind: 'upstream', name, definition: result.upstream } }
    }
    case 'script': {
      const problem = options.compileScript?.(keyClass.runtime, keyClass.name, text) ?? null
      if (problem !== null) return { ok: false, message: `${entry.key}: ${problem}` }
      return { ok: true, value: { kind: 'script', runtime: keyClass.runtime, name: keyClass.name, source: text, isStaged: false } }
    }
    case 'staged_script':
      return { ok: true, value: { kind: 'script', runtime: keyClass.runtime, name: keyClass.name, source: text, isStaged: true } }
    case 'commit_version': {
      const version = text.trim()
      if (version === '') return { ok: false, message: `${entry.key}: the version must not be empty` }
      return { ok: true, value: { kind: 'commit_version', runtime: keyClass.runtime, version } }
    }
    case 'dynamic':
      try {
        return { ok: true, value: { kind: 'dynamic', name: keyClass.name, value: JSON5.parse(text) as unknown } }
      } catch (err) {
        return { ok: false, message: `${entry.key}: value is not valid JSON: ${(err as Error).message}` }
      }
    default:
      return assertNever(keyClass)
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected key class ${JSON.stringify(value)}`)
}

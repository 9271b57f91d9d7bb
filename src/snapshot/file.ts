/** The last-known-good snapshot file (consul.md §11): the raw KV entries behind the live config, kept on disk so a
 *  restart while Consul is down can serve at once. Owns the file format (format 1: checksum, entry encoding, key
 *  order), the atomic write, the debounced `SnapshotWriter` with its `/status` counters, and the strict load.
 *  Leaves what the entries mean (§2 parsing, building the ConfigSnapshot) to the Consul apply step and the snapshot
 *  model, and what to do with a missing or invalid file (log it, `snapshot.load_error`, startup's choice of source)
 *  to the caller: loading never logs.
 *
 *  Value encoding (the spec leaves it open): a value that is valid UTF-8 is stored as text in `"value"`, a null value
 *  as `"value": null`, and any other bytes as canonical base64 in `"value_base64"` instead of `"value"`. Every entry
 *  has exactly one of the two fields, so null, empty and binary values all come back byte for byte. */

import { isUtf8 } from 'node:buffer'
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { formatLocalTime } from '../checkups/index.js'
import { PRODUCT_VERSION } from '../version.js'
import { SnapshotWriteError } from './errors.js'

/** One KV entry; `key` is relative to the prefix. The same shape as the watch's listing entries. */
export interface SnapshotEntry {
  readonly key: string
  readonly flags: number
  readonly createIndex: bigint
  readonly modifyIndex: bigint
  readonly value: Buffer | null
}

/** What the live state contributes to a snapshot; the writer adds the time and the product version. */
export interface SnapshotContent {
  readonly prefix: string
  readonly datacenter: string | null
  /** Index of the listing the entries came from. Never used as a watch cursor (consul.md §3). */
  readonly consulIndex: bigint
  /** Any order: the file is always written sorted by key. */
  readonly entries: readonly SnapshotEntry[]
}

/** The file's `body`, in memory. */
export interface SnapshotBody extends SnapshotContent {
  /** ISO 8601 UTC with milliseconds, exactly as in the file: `2024-05-01T10:00:05.123Z`. */
  readonly writtenAt: string
  readonly slardarVersion: string
}

export type SnapshotLoadResult =
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'valid'; readonly body: SnapshotBody }

/** The two pino methods the writer uses; a pino Logger fits. */
export interface SnapshotLogger {
  info(fields: object, message: string): void
  error(fields: object, message: string): void
}

/** Milliseconds since the epoch: `written_at` and `last_write` are wall-clock times. */
export interface WriterClock {
  nowMs(): number
}

export interface WriterTimers {
  /** Calls `callback` once after `delayMs`; the returned function cancels the call. */
  startTimer(callback: () => void, delayMs: number): () => void
}

export interface SnapshotWriterOptions {
  readonly path: string
  readonly logger: SnapshotLogger
  /** Written as `slardar_version`; defaults to the package version. */
  readonly slardarVersion?: string
  /** Default 1000: "debounced to once per second at most" (consul.md §11). */
  readonly minWriteIntervalMs?: number
  readonly clock?: WriterClock
  readonly timers?: WriterTimers
}

/** Called when a write starts, so the newest state is written however many changes were scheduled before it. */
export type SnapshotContentProvider = () => SnapshotContent

export type SnapshotFlushResult = { readonly ok: true } | { readonly ok: false; readonly error: SnapshotWriteError }

/** `/status` `consul.snapshot`, minus `load_error`, which belongs to whoever loaded the file. */
export interface SnapshotWriterStatus {
  readonly path: string
  /** Local `YYYY-MM-DD HH:MM:SS` (upstreams.md §6) of the last successful write, or null. */
  readonly last_write: string | null
  /** Why the newest state is not on disk, or null once a write has succeeded again. */
  readonly last_error: string | null
  readonly writes_ok: number
  readonly writes_failed: number
}

const FILE_FORMAT = 1
const DEFAULT_MIN_WRITE_INTERVAL_MS = 1000
/** Cap of the retry backoff after failed writes (a full disk is retried, but not every second for hours). */
const MAX_RETRY_DELAY_MS = 60_000
const MAX_UINT64 = (1n << 64n) - 1n
const CANONICAL_DECIMAL = /^(?:0|[1-9][0-9]*)$/
const SHA256_HEX = /^[0-9a-f]{64}$/
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const TOP_FIELDS = ['format', 'sha256', 'body'] as const
const BODY_FIELDS = ['written_at', 'slardar_version', 'prefix', 'datacenter', 'consul_index', 'entries'] as const
const ENTRY_FIELDS = ['key', 'flags', 'create_index', 'modify_index'] as const
const VALUE_FIELDS = ['value', 'value_base64'] as const

const systemClock: WriterClock = { nowMs: () => Date.now() }
const systemTimers: WriterTimers = {
  startTimer(callback, delayMs) {
    const timer = setTimeout(callback, delayMs)
    return () => clearTimeout(timer)
  },
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

interface EntryJson {
  readonly key: string
  readonly flags: number
  readonly create_index: string
  readonly modify_index: string
  readonly value?: string | null
  readonly value_base64?: string
}

/** A body or file that breaks the format; the message names the field. Caught inside this module only. */
class ShapeProblem extends Error {}

/** Writes `body` to `path` atomically (consul.md §11): `<path>.tmp-<pid>`, fsync, rename over `path`, fsync the
 *  directory (created 0700 if missing; an existing directory keeps its mode). The file is 0600: scripts may hold
 *  secrets. Throws SnapshotWriteError (SNAPSHOT_WRITE_FAILED); until the rename the previous file is untouched and
 *  the temp file is removed. */
export async function writeSnapshotFile(path: string, body: SnapshotBody): Promise<void> {
  let fileText: string
  try {
    fileText = buildFileText(body)
  } catch (err) {
    if (!(err instanceof ShapeProblem)) throw err
    throw new SnapshotWriteError(path, `refusing to write an invalid snapshot: ${err.message}; the previous file is unchanged`)
  }
  return enqueueWrite(path, () => replaceFileAtomically(path, fileText))
}

function buildFileText(body: SnapshotBody): string {
  if (!isIsoUtcMs(body.writtenAt)) {
    throw new ShapeProblem(`writtenAt must look like "2024-05-01T10:00:05.123Z", got ${show(body.writtenAt)}`)
  }
  if (body.slardarVersion === '') throw new ShapeProblem('slardarVersion must not be empty')
  checkUint64(body.consulIndex, 'consulIndex')
  const entries = sortEntriesByKey(body.entries)
  const entriesJson: EntryJson[] = []
  for (const [position, entry] of entries.entries()) {
    const where = `entry "${entry.key}"`
    if (position > 0 && entries[position - 1]?.key === entry.key) throw new ShapeProblem(`${where} appears twice`)
    if (!isFlags(entry.flags)) throw new ShapeProblem(`${where}: flags must be an integer 0..2^53-1, got ${show(entry.flags)}`)
    checkUint64(entry.createIndex, `${where}: createIndex`)
    checkUint64(entry.modifyIndex, `${where}: modifyIndex`)
    entriesJson.push({
      key: entry.key,
      flags: entry.flags,
      create_index: entry.createIndex.toString(),
      modify_index: entry.modifyIndex.toString(),
      ...encodeValue(entry.value),
    })
  }
  // Field order is part of the checksum, so it is fixed here once.
  const bodyText = JSON.stringify({
    written_at: body.writtenAt,
    slardar_version: body.slardarVersion,
    prefix: body.prefix,
    datacenter: body.datacenter,
    consul_index: body.consulIndex.toString(),
    entries: entriesJson,
  })
  // Concatenated rather than stringified again: the checksummed text is then exactly the text in the file.
  return `{"format":${FILE_FORMAT},"sha256":"${sha256Hex(bodyText)}","body":${bodyText}}\n`
}

function encodeValue(value: Buffer | null): Pick<EntryJson, 'value' | 'value_base64'> {
  if (value === null) return { value: null }
  if (isUtf8(value)) return { value: value.toString('utf8') }
  return { value_base64: value.toString('base64') }
}

/** Consul lists keys in byte order of their UTF-8 form; JavaScript's `<` compares UTF-16 units, which disagrees for
 *  characters above U+FFFF. The file uses Consul's order, so a listing is already sorted. */
function sortEntriesByKey(entries: readonly SnapshotEntry[]): readonly SnapshotEntry[] {
  return entries
    .map((entry) => ({ entry, keyBytes: Buffer.from(entry.key, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.keyBytes, b.keyBytes))
    .map(({ entry }) => entry)
}

/** Writes in flight, per resolved path. Every write in this process uses the same temp name (`<path>.tmp-<pid>`), so
 *  two overlapping writes of one path would interleave in one temp file: they are queued instead. */
const writeQueues = new Map<string, Promise<void>>()

function enqueueWrite(path: string, write: () => Promise<void>): Promise<void> {
  const queueKey = resolve(path)
  const current = (writeQueues.get(queueKey) ?? Promise.resolve()).then(write)
  const settled = current.then(
    () => undefined,
    () => undefined,
  )
  writeQueues.set(queueKey, settled)
  void settled.then(() => {
    if (writeQueues.get(queueKey) === settled) writeQueues.delete(queueKey)
  })
  return current
}

async function replaceFileAtomically(path: string, text: string): Promise<void> {
  const directory = dirname(path)
  const tempPath = `${path}.tmp-${process.pid}`
  let isTempCreated = false
  let isRenamed = false
  try {
    await mkdir(directory, { recursive: true, mode: 0o700 })
    const file = await open(tempPath, 'w', 0o600)
    isTempCreated = true
    try {
      // open()'s mode applies only when it creates the file; a temp file left by an earlier process with our pid
      // would keep its old mode.
      await file.chmod(0o600)
      await file.writeFile(text, 'utf8')
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(tempPath, path)
    isRenamed = true
    // The rename itself lives in the directory; without this fsync a crash can bring the old file back.
    const directoryHandle = await open(directory, 'r')
    try {
      await directoryHandle.sync()
    } finally {
      await directoryHandle.close()
    }
  } catch (err) {
    // A temp path we did not create (say, a directory someone put there) is left alone.
    if (isTempCreated && !isRenamed) await unlink(tempPath).catch(() => undefined)
    const outcome = isRenamed ? 'the new file is in place but may not survive a crash' : 'the previous file is unchanged'
    throw new SnapshotWriteError(path, `${(err as Error).message}; ${outcome}`, { cause: err })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The debounced writer

/** Writes the primary's snapshot file at most once per `minWriteIntervalMs`: the first change after a quiet spell
 *  is written at once, later ones are coalesced into one write when the interval is up, and the provider is called
 *  only then, so the newest state wins. A failed write is logged once (again only if the reason changes), counted,
 *  shown in `status()` and retried with backoff (1 s, 2 s, 4 s … 60 s); it never throws into the caller, because
 *  serving must go on (reliability.md, "Disk full"). */
export class SnapshotWriter {
  readonly #path: string
  readonly #logger: SnapshotLogger
  readonly #slardarVersion: string
  readonly #minWriteIntervalMs: number
  readonly #clock: WriterClock
  readonly #timers: WriterTimers
  /** The newest state not yet on disk, kept after a failed write so it is retried; null when the file is current. */
  #pending: SnapshotContentProvider | null = null
  #cancelTimer: (() => void) | null = null
  #inFlight: Promise<SnapshotFlushResult> | null = null
  #lastStartMs: number | null = null
  #lastWriteMs: number | null = null
  #lastError: SnapshotWriteError | null = null
  #failuresInRow = 0
  #writesOk = 0
  #writesFailed = 0

  constructor(options: SnapshotWriterOptions) {
    this.#path = options.path
    this.#logger = options.logger
    this.#slardarVersion = options.slardarVersion ?? PRODUCT_VERSION
    this.#minWriteIntervalMs = options.minWriteIntervalMs ?? DEFAULT_MIN_WRITE_INTERVAL_MS
    this.#clock = options.clock ?? systemClock
    this.#timers = options.timers ?? systemTimers
  }

  /** Marks the state as changed; `provider` is called when the write starts. */
  schedule(provider: SnapshotContentProvider): void {
    this.#pending = provider
    // A write in flight re-arms the timer when it ends.
    if (this.#cancelTimer === null && this.#inFlight === null) this.#armTimer()
  }

  /** Writes the newest scheduled state now, ignoring the interval (SIGTERM, the first Consul read), after any write
   *  in flight. Resolves `{ok: true}` once the file holds the newest state (at once if nothing is pending); never
   *  rejects. */
  async flush(): Promise<SnapshotFlushResult> {
    for (;;) {
      this.#stopTimer()
      if (this.#inFlight !== null) {
        await this.#inFlight
        continue
      }
      if (this.#pending === null) return { ok: true }
      return this.#startWrite(this.#pending)
    }
  }

  status(): SnapshotWriterStatus {
    return {
      path: this.#path,
      last_write: this.#lastWriteMs === null ? null : formatLocalTime(this.#lastWriteMs),
      last_error: this.#lastError === null ? null : this.#lastError.message,
      writes_ok: this.#writesOk,
      writes_failed: this.#writesFailed,
    }
  }

  #armTimer(): void {
    const waitMs =
      this.#failuresInRow === 0
        ? this.#minWriteIntervalMs
        : Math.min(MAX_RETRY_DELAY_MS, this.#minWriteIntervalMs * 2 ** (this.#failuresInRow - 1))
    const sinceLastStartMs = this.#lastStartMs === null ? Infinity : this.#clock.nowMs() - this.#lastStartMs
    // Clamped to waitMs: a wall clock stepped backwards must not postpone the next write by more than one wait.
    const delayMs = Math.min(waitMs, Math.max(0, waitMs - sinceLastStartMs))
    this.#cancelTimer = this.#timers.startTimer(() => {
      this.#cancelTimer = null
      if (this.#pending !== null) void this.#startWrite(this.#pending)
    }, delayMs)
  }

  #stopTimer(): void {
    if (this.#cancelTimer === null) return
    this.#cancelTimer()
    this.#cancelTimer = null
  }

  #startWrite(provider: SnapshotContentProvider): Promise<SnapshotFlushResult> {
    this.#pending = null
    this.#lastStartMs = this.#clock.nowMs()
    const write = this.#write(provider, this.#lastStartMs).finally(() => {
      this.#inFlight = null
      if (this.#pending !== null && this.#cancelTimer === null) this.#armTimer()
    })
    this.#inFlight = write
    return write
  }

  async #write(provider: SnapshotContentProvider, startedAtMs: number): Promise<SnapshotFlushResult> {
    try {
      const content = provider()
      await writeSnapshotFile(this.#path, {
        writtenAt: new Date(startedAtMs).toISOString(),
        slardarVersion: this.#slardarVersion,
        prefix: content.prefix,
        datacenter: content.datacenter,
        consulIndex: content.consulIndex,
        entries: content.entries,
      })
    } catch (err) {
      return this.#recordFailure(provider, toWriteError(this.#path, err))
    }
    this.#writesOk += 1
    this.#lastWriteMs = this.#clock.nowMs()
    if (this.#failuresInRow > 0) {
      this.#logger.info(
        { path: this.#path, failed_attempts: this.#failuresInRow },
        `${this.#path}: snapshot written again after ${this.#failuresInRow} failed attempt(s)`,
      )
    }
    this.#failuresInRow = 0
    this.#lastError = null
    return { ok: true }
  }

  #recordFailure(provider: SnapshotContentProvider, error: SnapshotWriteError): SnapshotFlushResult {
    this.#writesFailed += 1
    this.#failuresInRow += 1
    // Logged once per distinct reason: a full disk retried every minute must not fill the log as well.
    if (error.message !== this.#lastError?.message) {
      this.#logger.error({ code: error.code, path: this.#path }, `${error.message}; serving goes on, will retry`)
    }
    this.#lastError = error
    // A state scheduled during the failed write is newer; otherwise retry this one.
    this.#pending ??= provider
    return { ok: false, error }
  }
}

/** writeSnapshotFile throws only SnapshotWriteError; anything else came from the provider (a bug upstream). */
function toWriteError(path: string, err: unknown): SnapshotWriteError {
  if ((err as { code?: unknown } | null)?.code === 'SNAPSHOT_WRITE_FAILED') return err as SnapshotWriteError
  const detail = err instanceof Error ? err.message : String(err)
  return new SnapshotWriteError(path, `could not collect the entries to write: ${detail}; the previous file is unchanged`, {
    cause: err,
  })
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

/** Reads and fully verifies the file. Anything wrong makes the whole file `invalid`, with a reason that names the
 *  file and the problem: a snapshot is used whole or not at all (consul.md §11). */
export async function loadSnapshotFile(path: string, expectedPrefix: string): Promise<SnapshotLoadResult> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
    return invalid(path, `cannot read it (${(err as Error).message})`)
  }
  if (!isUtf8(bytes)) return invalid(path, 'not UTF-8 text (file damaged)')
  let document: unknown
  try {
    document = JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    return invalid(path, `not valid JSON (${(err as Error).message}; file truncated or damaged)`)
  }
  if (!isRecord(document) || !Object.hasOwn(document, 'format')) {
    return invalid(path, 'not a snapshot file (expected an object with "format", "sha256" and "body")')
  }
  if (document.format !== FILE_FORMAT) {
    return invalid(path, `unknown format ${show(document.format)} (this version reads format ${FILE_FORMAT}; written by a newer Slardar?)`)
  }
  try {
    expectFields(document, 'the top level', TOP_FIELDS)
    if (typeof document.sha256 !== 'string' || !SHA256_HEX.test(document.sha256)) {
      throw new ShapeProblem(`sha256 must be 64 lower-case hex digits, got ${show(document.sha256)}`)
    }
    if (sha256Hex(JSON.stringify(document.body)) !== document.sha256) {
      return invalid(path, 'checksum mismatch (file edited or truncated)')
    }
    const body = parseBody(document.body)
    if (body.prefix !== expectedPrefix) {
      return invalid(path, `written for prefix "${body.prefix}", but consul.config_key_prefix is "${expectedPrefix}"`)
    }
    return { kind: 'valid', body }
  } catch (err) {
    if (err instanceof ShapeProblem) return invalid(path, err.message)
    throw err
  }
}

function invalid(path: string, problem: string): SnapshotLoadResult {
  return { kind: 'invalid', reason: `${path}: ${problem}; ignoring it` }
}

function parseBody(raw: unknown): SnapshotBody {
  const body = expectFields(raw, 'body', BODY_FIELDS)
  if (!isIsoUtcMs(body.written_at)) {
    throw new ShapeProblem(`body.written_at must look like "2024-05-01T10:00:05.123Z", got ${show(body.written_at)}`)
  }
  if (typeof body.slardar_version !== 'string' || body.slardar_version === '') {
    throw new ShapeProblem(`body.slardar_version must be a non-empty string, got ${show(body.slardar_version)}`)
  }
  if (typeof body.prefix !== 'string') throw new ShapeProblem(`body.prefix must be a string, got ${show(body.prefix)}`)
  if (body.datacenter !== null && typeof body.datacenter !== 'string') {
    throw new ShapeProblem(`body.datacenter must be a string or null, got ${show(body.datacenter)}`)
  }
  const consulIndex = parseIndex(body.consul_index, 'body.consul_index')
  if (!Array.isArray(body.entries)) throw new ShapeProblem(`body.entries must be an array, got ${show(body.entries)}`)
  const entries: SnapshotEntry[] = []
  let previousKeyBytes: Buffer | null = null
  for (const [position, rawEntry] of (body.entries as unknown[]).entries()) {
    const entry = parseEntry(rawEntry, `body.entries[${position}]`)
    const keyBytes = Buffer.from(entry.key, 'utf8')
    if (previousKeyBytes !== null && Buffer.compare(previousKeyBytes, keyBytes) >= 0) {
      throw new ShapeProblem(
        `body.entries[${position}]: key "${entry.key}" does not sort after "${previousKeyBytes.toString('utf8')}" ` +
          '(entries must be sorted by key, each key once)',
      )
    }
    previousKeyBytes = keyBytes
    entries.push(entry)
  }
  return {
    writtenAt: body.written_at,
    slardarVersion: body.slardar_version,
    prefix: body.prefix,
    datacenter: body.datacenter,
    consulIndex,
    entries,
  }
}

function parseEntry(raw: unknown, where: string): SnapshotEntry {
  const entry = expectFields(raw, where, ENTRY_FIELDS, VALUE_FIELDS)
  if (typeof entry.key !== 'string') throw new ShapeProblem(`${where}.key must be a string, got ${show(entry.key)}`)
  if (!isFlags(entry.flags)) throw new ShapeProblem(`${where}.flags must be an integer 0..2^53-1, got ${show(entry.flags)}`)
  return {
    key: entry.key,
    flags: entry.flags,
    createIndex: parseIndex(entry.create_index, `${where}.create_index`),
    modifyIndex: parseIndex(entry.modify_index, `${where}.modify_index`),
    value: parseValue(entry, where),
  }
}

function parseValue(entry: Record<string, unknown>, where: string): Buffer | null {
  const hasText = Object.hasOwn(entry, 'value')
  if (hasText === Object.hasOwn(entry, 'value_base64')) {
    throw new ShapeProblem(`${where} must have exactly one of "value" and "value_base64"`)
  }
  if (hasText) {
    if (entry.value === null) return null
    if (typeof entry.value !== 'string') throw new ShapeProblem(`${where}.value must be a string or null, got ${show(entry.value)}`)
    const bytes = Buffer.from(entry.value, 'utf8')
    // A lone surrogate (only possible as a \u escape) has no UTF-8 form and would come back as U+FFFD.
    if (bytes.toString('utf8') !== entry.value) throw new ShapeProblem(`${where}.value is not valid Unicode text`)
    return bytes
  }
  const encoded = entry.value_base64
  const bytes = typeof encoded === 'string' ? Buffer.from(encoded, 'base64') : null
  // Node's decoder skips characters it does not know; re-encoding shows whether anything was skipped.
  if (bytes === null || bytes.toString('base64') !== encoded) {
    throw new ShapeProblem(`${where}.value_base64 must be canonical base64, got ${show(encoded)}`)
  }
  return bytes
}

/** Checks that `raw` is an object with every `required` field, any of the `optional` ones and nothing else. */
function expectFields(
  raw: unknown,
  where: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Record<string, unknown> {
  if (!isRecord(raw)) throw new ShapeProblem(`${where} must be an object, got ${show(raw)}`)
  for (const field of required) {
    if (!Object.hasOwn(raw, field)) throw new ShapeProblem(`${where}: "${field}" is missing`)
  }
  for (const field of Object.keys(raw)) {
    if (!required.includes(field) && !optional.includes(field)) throw new ShapeProblem(`${where}: unexpected field "${field}"`)
  }
  return raw
}

/** Indexes are unsigned 64-bit, written as canonical decimal strings (consul.md, intro). */
function parseIndex(raw: unknown, where: string): bigint {
  if (typeof raw === 'string' && CANONICAL_DECIMAL.test(raw)) {
    const index = BigInt(raw)
    if (index <= MAX_UINT64) return index
  }
  throw new ShapeProblem(`${where} must be a decimal string 0..${MAX_UINT64}, got ${show(raw)}`)
}

function checkUint64(index: bigint, where: string): void {
  if (index < 0n || index > MAX_UINT64) throw new ShapeProblem(`${where} must be 0..${MAX_UINT64}, got ${index}`)
}

/** Consul's flags are uint64, but the client parses them as JSON numbers, so only safe integers arrive intact. */
function isFlags(raw: unknown): raw is number {
  return typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0
}

function isIsoUtcMs(raw: unknown): raw is string {
  if (typeof raw !== 'string' || !ISO_UTC_MS.test(raw)) return false
  // The round trip rejects well-formed but impossible times such as 2024-02-30.
  const ms = Date.parse(raw)
  return Number.isFinite(ms) && new Date(ms).toISOString() === raw
}

function isRecord(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw)
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/** A short JSON rendering of a bad value for messages. */
function show(raw: unknown): string {
  if (raw === undefined) return 'nothing'
  const text = JSON.stringify(raw)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** The rules of each KV operation (consul.md §19, §22), written once for both the `/v1/kv` API and `/v1/txn`:
 *  set, CAS, lock/unlock with sessions and lock-delay, the three deletes, and the read/check verbs. Each one edits
 *  a KvDraft and reports an outcome; the caller turns it into `true`/`false`/500 (KV API) or a txn result/error.
 *  Texts are Consul's state-store messages. */

import { goQuote } from './go-compat.js'
import { hasSameContent, type KvDraft, type KvEntry } from './store.js'

export const KV_VERBS = [
  'set',
  'cas',
  'lock',
  'unlock',
  'get',
  'get-tree',
  'check-index',
  'check-session',
  'check-not-exists',
  'delete',
  'delete-tree',
  'delete-cas',
] as const

export type KvVerb = (typeof KV_VERBS)[number]

const WRITE_VERBS: ReadonlySet<string> = new Set(['set', 'cas', 'lock', 'unlock', 'delete', 'delete-tree', 'delete-cas'])

/** Consul's isWrite: a transaction with no write verb is answered by the read path (no index consumed). */
export function isWriteVerb(verb: string): boolean {
  return WRITE_VERBS.has(verb)
}

export interface KvOp {
  /** A verb outside KV_VERBS is kept so the transaction can report `unknown KV verb`. */
  readonly verb: string
  readonly key: string
  readonly value: Buffer | null
  readonly flags: bigint
  /** CAS / check-index index. */
  readonly index: bigint
  readonly session: string
}

export type KvOpOutcome =
  /** Applied; `entries` are the txn results (the KV API ignores them). */
  | { readonly kind: 'ok'; readonly entries: readonly KvEntry[] }
  /** CAS or lock refused: the KV API answers `false`; a transaction fails with `what`. */
  | { readonly kind: 'refused'; readonly what: string }
  /** An error Consul returns from the state store: a 500 on the KV API, a txn error. */
  | { readonly kind: 'error'; readonly what: string }

export type SessionLookup =
  | { readonly kind: 'found' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'malformed'; readonly reason: string }

/** What lock operations need to know about sessions; owned by sessions.ts. */
export interface LockContext {
  lookupSession(id: string): SessionLookup
  isLockDelayed(key: string): boolean
}

/** Writes `next` unless it changes nothing, in which case the existing entry stays, ModifyIndex included. */
function write(draft: KvDraft, existing: KvEntry | null, next: KvEntry): KvEntry {
  if (hasSameContent(existing, next)) return existing as KvEntry
  draft.put(next)
  return next
}

/** A plain set keeps CreateIndex, LockIndex and Session: locks are advisory. */
function setValue(draft: KvDraft, op: KvOp): KvEntry {
  const existing = draft.get(op.key)
  return write(draft, existing, {
    key: op.key,
    flags: op.flags,
    value: op.value,
    lockIndex: existing?.lockIndex ?? 0n,
    session: existing?.session ?? null,
    createIndex: existing?.createIndex ?? draft.index,
    modifyIndex: draft.index,
  })
}

function ok(entries: readonly KvEntry[] = []): KvOpOutcome {
  return { kind: 'ok', entries }
}

function lock(draft: KvDraft, op: KvOp, context: LockContext): KvOpOutcome {
  // Consul checks lock-delay before it looks at the session at all (kvsPreApply runs before the FSM).
  if (context.isLockDelayed(op.key)) {
    return { kind: 'refused', what: `failed to lock key ${goQuote(op.key)} due to lock delay` }
  }
  if (op.session === '') return { kind: 'error', what: 'missing session' }
  const lookup = context.lookupSession(op.session)
  if (lookup.kind === 'malformed') return { kind: 'error', what: `failed session lookup: index error: ${lookup.reason}` }
  if (lookup.kind === 'unknown') return { kind: 'error', what: `invalid session ${goQuote(op.session)}` }
  const existing = draft.get(op.key)
  let lockIndex: bigint
  if (existing?.session === op.session) lockIndex = existing.lockIndex
  else if (existing !== null && existing.session !== null) {
    return { kind: 'refused', what: `failed to lock key ${goQuote(op.key)}, lock is already held` }
  } else lockIndex = (existing?.lockIndex ?? 0n) + 1n
  const entry = write(draft, existing, {
    key: op.key,
    flags: op.flags,
    value: op.value,
    lockIndex,
    session: op.session,
    createIndex: existing?.createIndex ?? draft.index,
    modifyIndex: draft.index,
  })
  return ok([entry])
}

/** Release replaces value and flags with the request's, clears Session and keeps LockIndex. */
function unlock(draft: KvDraft, op: KvOp): KvOpOutcome {
  if (op.session === '') return { kind: 'error', what: 'missing session' }
  const existing = draft.get(op.key)
  if (existing === null || existing.session !== op.session) {
    return {
      kind: 'refused',
      what: `failed to unlock key ${goQuote(op.key)}, lock isn't held, or is held by another session`,
    }
  }
  const entry = write(draft, existing, {
    ...existing,
    flags: op.flags,
    value: op.value,
    session: null,
    modifyIndex: draft.index,
  })
  return ok([entry])
}

export function applyKvOp(draft: KvDraft, op: KvOp, context: LockContext): KvOpOutcome {
  const existing = draft.get(op.key)
  switch (op.verb as KvVerb) {
    case 'set':
      return ok([setValue(draft, op)])
    case 'cas': {
      // cas=0 creates only; cas=N writes only over ModifyIndex N.
      const isStale = op.index === 0n ? existing !== null : existing === null || existing.modifyIndex !== op.index
      if (isStale) return { kind: 'refused', what: `failed to set key ${goQuote(op.key)}, index is stale` }
      return ok([setValue(draft, op)])
    }
    case 'lock':
      return lock(draft, op, context)
    case 'unlock':
      return unlock(draft, op)
    case 'delete':
      draft.remove(op.key)
      return ok()
    case 'delete-cas':
      // An absent key counts as deleted (true); a present one must carry exactly the given index (0 included).
      if (existing !== null && existing.modifyIndex !== op.index) {
        return { kind: 'refused', what: `failed to delete key ${goQuote(op.key)}, index is stale` }
      }
      draft.remove(op.key)
      return ok()
    case 'delete-tree':
      draft.removeTree(op.key)
      return ok()
    case 'get':
      return existing === null ? { kind: 'error', what: `key ${goQuote(op.key)} doesn't exist` } : ok([existing])
    case 'get-tree':
      return ok(draft.list(op.key))
    case 'check-index':
      if (existing === null) return { kind: 'error', what: `key ${goQuote(op.key)} doesn't exist` }
      if (existing.modifyIndex !== op.index) {
        return {
          kind: 'error',
          what: `failed index check for key ${goQuote(op.key)}, current modify index ${existing.modifyIndex} != ${op.index}`,
        }
      }
      return ok([existing])
    case 'check-session': {
      const subject = `failed session check for key ${goQuote(op.key)}`
      if (existing === null) return { kind: 'error', what: `${subject}, key doesn't exist` }
      if (existing.session !== op.session) {
        const current = goQuote(existing.session ?? '')
        return { kind: 'error', what: `${subject}, current session ${current} != ${goQuote(op.session)}` }
      }
      return ok([existing])
    }
    case 'check-not-exists':
      return existing === null ? ok() : { kind: 'error', what: `key ${goQuote(op.key)} exists` }
    default:
      return { kind: 'error', what: `unknown KV verb ${goQuote(op.verb)}` }
  }
}

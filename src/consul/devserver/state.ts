/** The server's whole state and every mutation of it (consul.md §19–§22): the global index counter shared by KV,
 *  sessions and the catalog; applying a KV op or a transaction at one index (or none for a no-op); session
 *  create/renew/destroy with TTL timers and invalidation (release or delete, then lock-delay); service and TTL-check
 *  changes with their timers; tombstone reaping. After each effective change it wakes the matching waiters and
 *  tells persistence. HTTP shapes and ACL decisions are left to the *-api.ts files. */

import { randomUUID } from 'node:crypto'
import { BlockingHub } from './blocking.js'
import { Catalog, type CheckStatus, type NodeIdentity, type ServiceRegistration } from './catalog.js'
import { ApiError } from './errors.js'
import type { JsonOut } from './json.js'
import { applyKvOp, type KvOp, type KvOpOutcome, type LockContext } from './kv-ops.js'
import { LockDelays, SessionTable, uuidFormatProblem, type Session, type SessionRequest } from './sessions.js'
import { KvStore, kvEntryToJson, type KvDraft, type KvTableState } from './store.js'

export interface Clock {
  nowMs(): number
}

export const MONOTONIC_CLOCK: Clock = { nowMs: () => performance.now() }

export interface StateSettings {
  readonly node: NodeIdentity
  /** The counter's first value; the node's own catalog registration sits at it. */
  readonly startIndex: bigint
  /** 0 = tombstones are kept until reapTombstones(). */
  readonly tombstoneTtlMs: number
}

/** Decides, per transaction op, what the caller's token may do. */
export interface TxnGuard {
  /** A Consul permission-denied text when the op is not allowed, else null. */
  denial(op: KvOp): string | null
  isReadable(key: string): boolean
}

export type TxnOutcome =
  | { readonly ok: true; readonly results: JsonOut[] }
  | { readonly ok: false; readonly errors: { readonly OpIndex: number; readonly What: string }[] }

export interface StateEvents {
  /** KV content or the index counter changed (both are persisted, §24): write soon. */
  onDurableChange(): void
  onError(err: unknown, message: string): void
}

const TTL_EXPIRED = 'TTL expired'

export class DevState {
  readonly kv = new KvStore()
  readonly sessions = new SessionTable()
  readonly catalog: Catalog
  private readonly lockDelays = new LockDelays()
  private readonly lockContext: LockContext
  private counter: bigint
  private readonly sessionTimers = new Map<string, NodeJS.Timeout>()
  private readonly checkTimers = new Map<string, NodeJS.Timeout>()
  private readonly reaper: NodeJS.Timeout | null

  constructor(
    settings: StateSettings,
    readonly hub: BlockingHub,
    private readonly clock: Clock,
    private readonly events: StateEvents,
  ) {
    this.counter = settings.startIndex
    this.catalog = new Catalog(settings.node, settings.startIndex)
    this.lockContext = {
      lookupSession: (id) => {
        const problem = uuidFormatProblem(id)
        if (problem !== null) return { kind: 'malformed', reason: problem }
        return this.sessions.get(id) === null ? { kind: 'unknown' } : { kind: 'found' }
      },
      isLockDelayed: (key) => this.lockDelays.isDelayed(key, this.clock.nowMs()),
    }
    const ttlMs = settings.tombstoneTtlMs
    this.reaper = ttlMs > 0 ? setInterval(() => this.reapTombstones(ttlMs), Math.max(50, Math.min(ttlMs, 1000))) : null
    this.reaper?.unref()
  }

  /** The global counter: the last index handed out (the start index before any write). */
  get index(): bigint {
    return this.counter
  }

  /** Loads persisted KV (§24); the counter continues from the file so indexes never go backwards. */
  restore(kv: KvTableState, counter: bigint): void {
    this.kv.restoreState(kv, this.clock.nowMs())
    if (counter > this.counter) this.counter = counter
  }

  /** One KV write or read through the KV API; committed at one new index unless it changed nothing. */
  applyKv(op: KvOp): KvOpOutcome {
    const draft = this.kv.draft(this.counter + 1n)
    const outcome = applyKvOp(draft, op, this.lockContext)
    if (outcome.kind === 'ok') this.commitKv(draft)
    return outcome
  }

  /** Runs every op on one draft: all writes at one index, or nothing when any op fails (every failure listed). */
  runTxn(ops: readonly KvOp[], guard: TxnGuard): TxnOutcome {
    const draft = this.kv.draft(this.counter + 1n)
    const results: JsonOut[] = []
    const errors: { OpIndex: number; What: string }[] = []
    ops.forEach((op, opIndex) => {
      const denied = guard.denial(op)
      if (denied !== null) {
        errors.push({ OpIndex: opIndex, What: denied })
        return
      }
      const outcome = applyKvOp(draft, op, this.lockContext)
      if (outcome.kind !== 'ok') {
        errors.push({ OpIndex: opIndex, What: outcome.what })
        return
      }
      const withValue = op.verb === 'get' || op.verb === 'get-tree'
      for (const entry of outcome.entries) {
        if (guard.isReadable(entry.key)) results.push({ KV: kvEntryToJson(entry, withValue) })
      }
    })
    if (errors.length > 0) return { ok: false, errors }
    this.commitKv(draft)
    return { ok: true, results }
  }

  /** Creates a session after checking its health checks exist and are not critical. */
  createSession(request: SessionRequest): Session {
    for (const checkId of [...request.nodeChecks, ...request.serviceChecks.map((check) => check.id)]) {
      const status = this.catalog.checkStatus(checkId)
      if (status === null) throw new ApiError(500, `Missing check '${checkId}' registration`)
      if (status === 'critical') throw new ApiError(500, `Check '${checkId}' is in critical state`)
    }
    const index = this.counter + 1n
    const session: Session = { ...request, id: randomUUID(), createIndex: index, modifyIndex: index }
    this.counter = index
    this.sessions.add(session)
    this.armSessionTtl(session)
    this.hub.notifySessions()
    this.events.onDurableChange()
    return session
  }

  /** Restarts a TTL session's clock; null when the session does not exist. Not a write: no index. */
  renewSession(id: string): Session | null {
    const session = this.sessions.get(id)
    if (session !== null) this.armSessionTtl(session)
    return session
  }

  /** Destroys a session (unknown ids are fine, as in Consul). */
  destroySession(id: string): void {
    this.invalidateSession(id)
  }

  registerService(registration: ServiceRegistration): void {
    const index = this.counter + 1n
    this.counter = index
    const removed = this.catalog.register(registration, index)
    for (const checkId of removed) this.dropCheck(checkId)
    for (const check of registration.checks) this.armCheckTtl(check.id, check.ttlMs)
    this.hub.notifyCatalog()
    this.events.onDurableChange()
    for (const check of registration.checks) if (check.status === 'critical') this.invalidateDependents(check.id)
  }

  /** False when the service id is unknown. */
  deregisterService(serviceId: string): boolean {
    const index = this.counter + 1n
    const removed = this.catalog.deregister(serviceId, index)
    if (removed === null) return false
    this.counter = index
    for (const checkId of removed) this.dropCheck(checkId)
    this.hub.notifyCatalog()
    this.events.onDurableChange()
    return true
  }

  /** `/v1/agent/check/{pass,warn,fail}`: sets the status and restarts the TTL. False when the check is unknown. */
  updateCheck(checkId: string, status: CheckStatus, output: string): boolean {
    const check = this.catalog.getCheck(checkId)
    if (check === null) return false
    this.armCheckTtl(checkId, check.ttlMs)
    this.setCheckStatus(checkId, status, output)
    return true
  }

  /** Drops tombstones older than `ttlMs`, or all of them (null). No waiter wakes: nothing changed for them. */
  reapTombstones(ttlMs: number | null): void {
    if (this.kv.reapTombstones(this.clock.nowMs(), ttlMs) > 0) this.events.onDurableChange()
  }

  /** Stops every timer; the state is left as it is for a final persistence write. */
  close(): void {
    if (this.reaper !== null) clearInterval(this.reaper)
    for (const timer of [...this.sessionTimers.values(), ...this.checkTimers.values()]) clearTimeout(timer)
    this.sessionTimers.clear()
    this.checkTimers.clear()
    this.hub.closeAll()
  }

  private commitKv(draft: KvDraft): void {
    const changed = this.kv.commit(draft, this.clock.nowMs())
    if (changed.length === 0) return
    this.counter = draft.index
    this.hub.notifyKeys(changed)
    this.events.onDurableChange()
  }

  /** Invalidation: release (or delete) every key the session holds, at one index with the session's removal, and
   *  start each key's lock-delay. */
  private invalidateSession(id: string): void {
    const session = this.sessions.get(id)
    if (session === null) return
    const nowMs = this.clock.nowMs()
    const index = this.counter + 1n
    const draft = this.kv.draft(index)
    const lockDelayMs = Number(session.lockDelayNs / 1_000_000n)
    for (const entry of this.kv.heldBy(session.id)) {
      if (session.behavior === 'delete') draft.remove(entry.key)
      else draft.put({ ...entry, session: null, modifyIndex: index })
      if (lockDelayMs > 0) this.lockDelays.start(entry.key, nowMs + lockDelayMs)
    }
    const timer = this.sessionTimers.get(session.id)
    if (timer !== undefined) clearTimeout(timer)
    this.sessionTimers.delete(session.id)
    this.counter = index
    this.sessions.remove(session.id, index)
    const changed = this.kv.commit(draft, nowMs)
    this.hub.notifyKeys(changed)
    this.hub.notifySessions()
    this.events.onDurableChange()
  }

  /** A session's TTL runs out 2 × TTL after its last renew (Consul: anywhere in [TTL, 2 × TTL]). */
  private armSessionTtl(session: Session): void {
    if (session.ttlMs <= 0) return
    const previous = this.sessionTimers.get(session.id)
    if (previous !== undefined) clearTimeout(previous)
    const timer = setTimeout(() => this.guarded(() => this.invalidateSession(session.id), 'session expiry failed'), 2 * session.ttlMs)
    timer.unref()
    this.sessionTimers.set(session.id, timer)
  }

  private armCheckTtl(checkId: string, ttlMs: number): void {
    const previous = this.checkTimers.get(checkId)
    if (previous !== undefined) clearTimeout(previous)
    const timer = setTimeout(() => {
      this.checkTimers.delete(checkId)
      this.guarded(() => {
        const output = this.catalog.getCheck(checkId)?.output ?? ''
        const expired = output === '' ? TTL_EXPIRED : `${TTL_EXPIRED} (last output before timeout follows): ${output}`
        this.setCheckStatus(checkId, 'critical', expired)
      }, 'TTL check expiry failed')
    }, ttlMs)
    timer.unref()
    this.checkTimers.set(checkId, timer)
  }

  private setCheckStatus(checkId: string, status: CheckStatus, output: string): void {
    const index = this.counter + 1n
    if (!this.catalog.updateCheck(checkId, status, output, index)) return
    this.counter = index
    this.hub.notifyCatalog()
    this.events.onDurableChange()
    if (status === 'critical') this.invalidateDependents(checkId)
  }

  /** A check that disappears or turns critical invalidates the sessions built on it, as in Consul. */
  private dropCheck(checkId: string): void {
    const timer = this.checkTimers.get(checkId)
    if (timer !== undefined) clearTimeout(timer)
    this.checkTimers.delete(checkId)
    this.invalidateDependents(checkId)
  }

  private invalidateDependents(checkId: string): void {
    for (const session of this.sessions.dependingOn(checkId)) this.invalidateSession(session.id)
  }

  /** Timer callbacks must never throw into the event loop: the server keeps serving and the error is logged. */
  private guarded(action: () => void, message: string): void {
    try {
      action()
    } catch (err) {
      this.events.onError(err, message)
    }
  }
}

/** The write flow of admin-api.md §4 that every write endpoint shares: the base checks (`If-Match`,
 *  `If-None-Match: *`) before any Consul call, then — once the endpoint has built and validated its value —
 *  the check-and-set write, the read-your-writes wait bounded by `admin.apply_wait`, and the outcome table
 *  (409 / 413 / 502 / 503, 202 when not applied in time; 503 when the snapshot file of `consul.enable: false`
 *  cannot be written). Building values and choosing keys is the endpoints' business (upstreams.ts, scripts.ts);
 *  the writes are consul/write.ts's (Consul) or consul/local-write.ts's (the local modes), behind one interface. */

import type { IncomingHttpHeaders } from 'node:http'
import type { KvWriteThrough, WriteResult } from '../consul/write.js'
import type { AdminBackend } from './backend.js'
import type { AdminMetrics, ConsulWriteOp } from './metrics.js'
import { notYetApplied, type Reply, statusReply } from './replies.js'

export type Precondition =
  | { readonly kind: 'proceed'; readonly isCreateOnly: boolean }
  | { readonly kind: 'refused'; readonly reply: Reply }

export type CommitOutcome =
  | { readonly kind: 'applied' }
  /** Written to Consul, not applied on this node within admin.apply_wait (it arrives later). */
  | { readonly kind: 'pending'; readonly index: bigint | null }
  | { readonly kind: 'failed'; readonly reply: Reply }

/** `<subject> was changed by someone else (ModifyIndex now <m>); re-read and retry` (409 of §4). */
export function conflictReply(subject: string, modifyIndex: bigint | null): Reply {
  const now = modifyIndex === null ? 'unknown' : modifyIndex.toString()
  return statusReply(409, `${subject} was changed by someone else (ModifyIndex now ${now}); re-read and retry`)
}

/** §4 step 1. `liveIndex` is the ModifyIndex of the live version on this node, null when there is none. */
export function checkPreconditions(headers: IncomingHttpHeaders, liveIndex: bigint | null, subject: string): Precondition {
  const ifMatch = headers['if-match']
  if (ifMatch !== undefined) {
    const trimmed = ifMatch.trim()
    if (trimmed === '*') {
      if (liveIndex === null) return { kind: 'refused', reply: conflictReply(subject, 0n) }
    } else {
      const match = /^(?:W\/)?"?(\d{1,20})"?$/.exec(trimmed)
      if (match === null) {
        return { kind: 'refused', reply: statusReply(400, `invalid If-Match header: expected "<ModifyIndex>" as sent in ETag, got ${JSON.stringify(ifMatch)}`) }
      }
      if (BigInt(match[1] as string) !== (liveIndex ?? 0n)) return { kind: 'refused', reply: conflictReply(subject, liveIndex ?? 0n) }
    }
  }
  const ifNoneMatch = headers['if-none-match']
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() === '*') {
    if (liveIndex !== null) return { kind: 'refused', reply: conflictReply(subject, liveIndex) }
    return { kind: 'proceed', isCreateOnly: true }
  }
  return { kind: 'proceed', isCreateOnly: false }
}

export function replyFor(outcome: CommitOutcome, success: Reply): Reply {
  switch (outcome.kind) {
    case 'applied':
      return success
    case 'pending':
      return notYetApplied(outcome.index)
    case 'failed':
      return outcome.reply
  }
}

export class WriteFlow {
  constructor(
    private readonly backend: AdminBackend,
    private readonly applyWaitMs: number,
    private readonly metrics: AdminMetrics,
  ) {}

  /** §4 steps 3–4: runs `write` against the backend's writer and waits for this node to apply it. `subject`
   *  names what changed in a 409 (`upstream api`, `script script.test`). Unexpected errors propagate (→ 500). */
  async commit(subject: string, op: ConsulWriteOp, write: (writer: KvWriteThrough) => Promise<WriteResult>): Promise<CommitOutcome> {
    const isWriteThrough = this.backend.isWriteThrough
    const startedMs = performance.now()
    let result: WriteResult
    try {
      result = await write(this.backend.writer)
    } catch (err) {
      const reply = writeFailureReply(subject, err)
      if (reply === null) throw err
      if (isWriteThrough) this.metrics.countConsulWrite(op, reply.status === 409 ? 'conflict' : 'error')
      return { kind: 'failed', reply }
    }
    if (isWriteThrough) this.metrics.countConsulWrite(op, 'ok')
    if (result.index === null) return { kind: 'pending', index: null }
    const isApplied = await this.backend.waitForApplied(result.index, this.applyWaitMs)
    if (!isApplied) return { kind: 'pending', index: result.index }
    this.metrics.observeApply((performance.now() - startedMs) / 1000)
    return { kind: 'applied' }
  }
}

/** The outcome table of §4; null for anything that is not a typed write failure. */
function writeFailureReply(subject: string, err: unknown): Reply | null {
  const failure = err as { code?: unknown; modifyIndex?: bigint | null; reason?: string; consulText?: string; message?: string }
  switch (failure.code) {
    case 'SNAPSHOT_WRITE_FAILED':
      return statusReply(503, `snapshot write failed: ${failure.reason ?? failure.message ?? 'unknown reason'}`)
    case 'CONSUL_LOCAL_VALUE_REJECTED':
      return statusReply(400, failure.message ?? 'value rejected')
    case 'CONSUL_WRITE_CONFLICT':
      return conflictReply(subject, failure.modifyIndex ?? null)
    case 'CONSUL_VALUE_TOO_LARGE':
    case 'CONSUL_WRITE_REFUSED':
      return statusReply(failure.code === 'CONSUL_VALUE_TOO_LARGE' ? 413 : 502, failure.message ?? 'consul refused the write')
    case 'CONSUL_UNAVAILABLE':
      return statusReply(503, failure.message ?? 'consul unavailable')
    default:
      return null
  }
}

/** Write-through to Consul KV for the admin API (consul.md §8), through the `consul` npm client. Owns the
 *  check-and-set calls (`kv.set`/`kv.del` with `cas`, `/v1/txn` for the two-key script operations), the
 *  read-your-writes index `w` (one non-blocking GET of the key after a write), the current ModifyIndex a
 *  conflict reports (one non-blocking GET), and the typing of every failure as conflict, unavailable, refused
 *  or too large, each with a message a user can act on. It never touches local state: whether and when the
 *  change is served is the watch's business (watch.ts), and what to answer is the admin API's.
 *  Keys are relative to the prefix, as everywhere in consul/. */

import type { IncomingMessage } from 'node:http'
import { CallCanceller, type ConsulEndpoint, parseIndexHeader } from './client.js'

/** Consul's default `kv_max_value_size` (and `txn_max_req_len`): what the 413 message quotes. */
export const CONSUL_MAX_VALUE_BYTES = 524_288

/** One operation of a write transaction (Consul's KV txn verbs we need; consul.md §8). */
export type TxnOp =
  /** Write `value` only over ModifyIndex `index`; 0 = only when the key does not exist. */
  | { readonly verb: 'cas'; readonly key: string; readonly value: Buffer; readonly index: bigint }
  /** Fail the transaction unless the key exists at exactly ModifyIndex `index`. */
  | { readonly verb: 'check-index'; readonly key: string; readonly index: bigint }
  /** Delete only when the key is at ModifyIndex `index`; an absent key counts as deleted. */
  | { readonly verb: 'delete-cas'; readonly key: string; readonly index: bigint }

export interface WriteResult {
  /** `w` of consul.md §8: the key's ModifyIndex after the write, or the KV index after a delete. Null when the
   *  write was accepted but the read-back failed (the change stands; only its index is unknown). */
  readonly index: bigint | null
}

/** What the admin API needs from the writer; `ConsulKvWriter` is the implementation. */
export interface KvWriteThrough {
  /** Creates or replaces `key` only if it is at ModifyIndex `cas` (0 = only if absent). */
  set(key: string, value: Buffer, cas: bigint): Promise<WriteResult>
  /** Deletes `key` only if it is at ModifyIndex `cas`. */
  delete(key: string, cas: bigint): Promise<WriteResult>
  /** Runs `ops` in one `/v1/txn`: all apply or none. `readBackKey` is the key whose GET gives `w`. */
  transaction(ops: readonly TxnOp[], readBackKey: string): Promise<WriteResult>
}

/** Someone else changed a key between our read and our write (Consul answered `false`, or the txn 409). */
export class ConsulWriteConflictError extends Error {
  readonly code = 'CONSUL_WRITE_CONFLICT'
  constructor(
    /** The key whose check failed, relative to the prefix. */
    readonly key: string,
    /** Its ModifyIndex now (0 = absent); null when the follow-up read failed. */
    readonly modifyIndex: bigint | null,
  ) {
    super(`${key} was changed by someone else (ModifyIndex now ${modifyIndex === null ? 'unknown' : modifyIndex}); re-read and retry`)
    this.name = 'ConsulWriteConflictError'
  }
}

/** Consul could not be reached, timed out, or answered 5xx: nothing is known to be written. */
export class ConsulUnavailableError extends Error {
  readonly code = 'CONSUL_UNAVAILABLE'
  constructor(
    readonly server: string,
    /** Short cause, e.g. `connect ECONNREFUSED 127.0.0.1:8500`. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`consul unavailable: ${reason}`, options)
    this.name = 'ConsulUnavailableError'
  }
}

/** Consul answered with a 4xx other than a CAS conflict or 413, e.g. 403 for a token without key:write. */
export class ConsulWriteRefusedError extends Error {
  readonly code = 'CONSUL_WRITE_REFUSED'
  constructor(
    readonly server: string,
    readonly statusCode: number,
    /** Consul's own text, e.g. `Permission denied: token with AccessorID '…' lacks permission 'key:write' on "…"`. */
    readonly consulText: string,
  ) {
    super(`consul refused the write: ${consulText}`)
    this.name = 'ConsulWriteRefusedError'
  }
}

/** Consul refused the value (or the transaction body) as too large (its 413). */
export class ConsulValueTooLargeError extends Error {
  readonly code = 'CONSUL_VALUE_TOO_LARGE'
  constructor(readonly consulText: string) {
    super(`value too large for consul (max ${CONSUL_MAX_VALUE_BYTES} bytes)`)
    this.name = 'ConsulValueTooLargeError'
  }
}

export type ConsulWriteError = ConsulWriteConflictError | ConsulUnavailableError | ConsulWriteRefusedError | ConsulValueTooLargeError

export interface ConsulKvWriterOptions {
  readonly endpoints: readonly ConsulEndpoint[]
  /** `consul.config_key_prefix`. */
  readonly prefix: string
  /** `consul.timeout` in ms: bound on every call. */
  readonly timeoutMs: number
}

/** Errors that prove the request never reached the server, so another server may take the same write. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

interface LooseClient {
  kv: {
    get(options: Record<string, unknown>): Promise<unknown>
    set(options: Record<string, unknown>): Promise<unknown>
    del(options: Record<string, unknown>): Promise<unknown>
  }
  transaction: { create(operations: unknown[], options: Record<string, unknown>): Promise<unknown> }
}

interface ClientFailure {
  isResponse?: boolean
  isTimeout?: boolean
  statusCode?: number
  code?: string
  message?: string
  response?: IncomingMessage & { body?: unknown }
}

export class ConsulKvWriter implements KvWriteThrough {
  /** The server that answered last; writes stay there until it cannot be reached. */
  private preferred = 0

  constructor(private readonly options: ConsulKvWriterOptions) {
    if (options.endpoints.length === 0) throw new Error('the Consul writer needs at least one server')
  }

  async set(key: string, value: Buffer, cas: bigint): Promise<WriteResult> {
    const { endpoint, result } = await this.call((client, endpoint) =>
      client.kv.set({ key: this.fullKey(key), value, cas: cas.toString(), timeout: this.options.timeoutMs }).catch((err: unknown) => {
        throw this.classify(endpoint, err)
      }),
    )
    if (result !== true) throw await this.conflictOn(endpoint, key)
    return this.readBack(endpoint, key)
  }

  async delete(key: string, cas: bigint): Promise<WriteResult> {
    const { endpoint, result } = await this.call((client, endpoint) =>
      client.kv.del({ key: this.fullKey(key), cas: cas.toString(), timeout: this.options.timeoutMs }).catch((err: unknown) => {
        throw this.classify(endpoint, err)
      }),
    )
    if (result !== true) throw await this.conflictOn(endpoint, key)
    return this.readBack(endpoint, key)
  }

  async transaction(ops: readonly TxnOp[], readBackKey: string): Promise<WriteResult> {
    if (ops.length === 0) throw new Error('a transaction needs at least one operation')
    const body = ops.map((op) => ({ KV: this.txnOpBody(op) }))
    const { endpoint } = await this.call((client, endpoint) =>
      client.transaction.create(body, { timeout: this.options.timeoutMs }).catch(async (err: unknown) => {
        const failedKey = failedTxnKey(err, ops)
        if (failedKey !== null) throw await this.conflictOn(endpoint, failedKey)
        throw this.classify(endpoint, err)
      }),
    )
    return this.readBack(endpoint, readBackKey)
  }

  private txnOpBody(op: TxnOp): Record<string, unknown> {
    // The client encodes the body with JSON.stringify, which has no BigInt; indexes stay far below 2^53.
    const index = Number(op.index)
    if (!Number.isSafeInteger(index)) throw new Error(`ModifyIndex ${op.index} of ${op.key} is beyond what a transaction body can carry`)
    const kv: Record<string, unknown> = { Verb: op.verb, Key: this.fullKey(op.key), Index: index }
    if (op.verb === 'cas') kv['Value'] = op.value.toString('base64')
    return kv
  }

  /** Runs `attempt` on the preferred server, moving to the next only when the request provably never left. */
  private async call<T>(attempt: (client: LooseClient, endpoint: ConsulEndpoint) => Promise<T>): Promise<{ endpoint: ConsulEndpoint; result: T }> {
    const endpoints = this.options.endpoints
    let lastError: unknown
    for (let tried = 0; tried < endpoints.length; tried += 1) {
      const slot = (this.preferred + tried) % endpoints.length
      const endpoint = endpoints[slot] as ConsulEndpoint
      try {
        const result = await attempt(endpoint.client as unknown as LooseClient, endpoint)
        this.preferred = slot
        return { endpoint, result }
      } catch (err) {
        lastError = err
        const wasNotSent = err instanceof ConsulUnavailableError && NOT_SENT_CODES.has((err.cause as ClientFailure | undefined)?.code ?? '')
        if (!wasNotSent) throw err
      }
    }
    throw lastError
  }

  /** `w`: one non-blocking GET of the key; its X-Consul-Index is the ModifyIndex, or the KV index once deleted. */
  private async readBack(endpoint: ConsulEndpoint, key: string): Promise<WriteResult> {
    try {
      return { index: await this.readIndex(endpoint, key) }
    } catch {
      return { index: null }
    }
  }

  private async conflictOn(endpoint: ConsulEndpoint, key: string): Promise<ConsulWriteConflictError> {
    try {
      return new ConsulWriteConflictError(key, await this.readModifyIndex(endpoint, key))
    } catch {
      return new ConsulWriteConflictError(key, null)
    }
  }

  private async readIndex(endpoint: ConsulEndpoint, key: string): Promise<bigint | null> {
    const response = await this.getKey(endpoint, key)
    return parseIndexHeader(response.headers['x-consul-index']) ?? null
  }

  /** The key's ModifyIndex now, 0 when it does not exist. */
  private async readModifyIndex(endpoint: ConsulEndpoint, key: string): Promise<bigint> {
    const response = await this.getKey(endpoint, key)
    if (response.statusCode === 404) return 0n
    return parseIndexHeader(response.headers['x-consul-index']) ?? 0n
  }

  private async getKey(endpoint: ConsulEndpoint, key: string): Promise<IncomingMessage> {
    const canceller = new CallCanceller()
    const client = endpoint.client as unknown as LooseClient
    try {
      const result = (await client.kv.get({ key: this.fullKey(key), ctx: canceller.ctx, timeout: this.options.timeoutMs })) as [IncomingMessage, unknown?]
      return result[0]
    } catch (err) {
      throw this.classify(endpoint, err)
    }
  }

  private fullKey(key: string): string {
    return this.options.prefix + key
  }

  private classify(endpoint: ConsulEndpoint, err: unknown): ConsulWriteError {
    const failure = (typeof err === 'object' && err !== null ? err : {}) as ClientFailure
    if (failure.isResponse === true) {
      const status = failure.statusCode ?? 0
      const text = consulText(failure)
      if (status === 413) return new ConsulValueTooLargeError(text)
      if (status >= 500) return new ConsulUnavailableError(endpoint.name, `${status} ${text}`, { cause: err })
      return new ConsulWriteRefusedError(endpoint.name, status, text)
    }
    if (failure.isTimeout === true) {
      return new ConsulUnavailableError(endpoint.name, `no answer from ${endpoint.name} within ${this.options.timeoutMs} ms`, { cause: err })
    }
    return new ConsulUnavailableError(endpoint.name, withoutClientPrefix(failure.message ?? String(err)), { cause: err })
  }
}

/** The key of the first op Consul reported as failed in a txn 409, or null when the failure is not a conflict. */
function failedTxnKey(err: unknown, ops: readonly TxnOp[]): string | null {
  const failure = err as ClientFailure
  if (failure.isResponse !== true || failure.statusCode !== 409) return null
  const body = failure.response?.body as { Errors?: { OpIndex?: number }[] } | undefined
  const opIndex = body?.Errors?.[0]?.OpIndex
  const op = typeof opIndex === 'number' ? ops[opIndex] : ops[0]
  return (op ?? (ops[0] as TxnOp)).key
}

/** Consul's error text from the response body (the client keeps only texts under 80 characters in `message`). */
function consulText(failure: ClientFailure): string {
  const body = failure.response?.body
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : ''
  const trimmed = text.trim()
  return trimmed !== '' ? trimmed : withoutClientPrefix(failure.message ?? 'no text')
}

/** The client prefixes messages with `consul: <call>: `; users read the cause, e.g. `connect ECONNREFUSED …`. */
function withoutClientPrefix(message: string): string {
  return message.replace(/^consul: [\w.]+: /, '')
}

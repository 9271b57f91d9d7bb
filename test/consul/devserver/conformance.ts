/** Shared by the conformance tests of consul.md §25: raw HTTP through undici (the path is sent byte for byte, no URL
 *  normalisation), timing on the monotonic clock, and row H63, which every answer of the suite must satisfy and
 *  which `call` therefore checks on each response it returns. */

import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { getGlobalDispatcher, type Dispatcher } from 'undici'
import type { DevServerOptions } from '../../../src/consul/devserver/index.js'
import { startDevConsul, type DevConsul } from '../../support/dev-consul.js'

export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
  readonly text: string
  /** performance.now() when the whole answer had arrived. */
  readonly receivedAtMs: number
  /** From sending the request to the whole answer. */
  readonly elapsedMs: number
  json(): unknown
}

export interface CallOptions {
  readonly body?: string | Buffer
  readonly headers?: Readonly<Record<string, string>>
  readonly dispatcher?: Dispatcher
}

/** Paths whose GET answers (200 and 404) must carry the blocking-query meta headers. */
const META_GET = /^\/v1\/(kv\/|session\/(info|list|node)|health\/)/

/** Row H63, checked on every answer. */
function checkRowH63(method: string, path: string, answer: Answer): void {
  const where = `${method} ${path} → ${answer.status}`
  const type = answer.headers['content-type']
  assert.equal(answer.headers['vary'], 'Accept-Encoding', `${where}: Vary`)
  assert.notEqual(answer.headers['x-consul-index'], '0', `${where}: X-Consul-Index is never 0`)
  const isTxnConflict = answer.status === 409 && path.startsWith('/v1/txn')
  if (type === 'application/json' || type?.startsWith('application/json')) {
    assert.equal(type, 'application/json', `${where}: JSON is exactly application/json`)
    assert.ok(answer.status < 300 || isTxnConflict, `${where}: JSON only on success`)
  }
  if (answer.status >= 400 && answer.body.length > 0 && !isTxnConflict) {
    assert.equal(type, 'text/plain; charset=utf-8', `${where}: error text type`)
  }
  if (method === 'GET' && path.startsWith('/v1/kv/') && answer.status === 404) {
    assert.equal(type, undefined, `${where}: KV 404 has no Content-Type`)
    assert.equal(answer.body.length, 0, `${where}: KV 404 has no body`)
  }
  const hasMeta = method === 'GET' && META_GET.test(path) && (answer.status === 200 || answer.status === 404)
  if (hasMeta) {
    assert.ok(BigInt(answer.headers['x-consul-index'] ?? '0') >= 1n, `${where}: X-Consul-Index >= 1`)
    assert.equal(answer.headers['x-consul-knownleader'], 'true', `${where}: KnownLeader`)
    assert.equal(answer.headers['x-consul-lastcontact'], '0', `${where}: LastContact`)
    assert.equal(answer.headers['x-consul-query-backend'], 'blocking-query', `${where}: Query-Backend`)
  }
  if (method === 'PUT' || method === 'DELETE') {
    assert.equal(answer.headers['x-consul-index'], undefined, `${where}: no index on writes`)
    if (!path.startsWith('/v1/txn')) assert.equal(answer.headers['x-consul-knownleader'], undefined, `${where}: no meta on writes`)
  }
}

/** One raw request; `path` goes out exactly as written (encoded characters, dots and double slashes included). */
export async function call(base: string, method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const dispatcher = options.dispatcher ?? getGlobalDispatcher()
  const startMs = performance.now()
  const response = await dispatcher.request({
    origin: base,
    path,
    method: method as Dispatcher.HttpMethod,
    headers: options.headers ?? {},
    body: options.body ?? null,
  })
  const body = Buffer.from(await response.body.arrayBuffer())
  const receivedAtMs = performance.now()
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value
  }
  const text = body.toString('utf8')
  const answer: Answer = {
    status: response.statusCode,
    headers,
    body,
    text,
    receivedAtMs,
    elapsedMs: receivedAtMs - startMs,
    json: () => JSON.parse(text) as unknown,
  }
  checkRowH63(method, path, answer)
  return answer
}

/** A client bound to one server. */
export interface Http {
  (method: string, path: string, options?: CallOptions): Promise<Answer>
}

export async function startServer(t: TestContext, options: DevServerOptions = {}): Promise<{ dev: DevConsul; http: Http }> {
  const dev = await startDevConsul(t, options)
  return { dev, http: (method, path, callOptions) => call(dev.url, method, path, callOptions) }
}

export function indexOf(answer: Answer): bigint {
  const header = answer.headers['x-consul-index']
  assert.ok(header !== undefined, `no X-Consul-Index on ${answer.status}`)
  return BigInt(header)
}

export interface KvJson {
  readonly LockIndex: number
  readonly Key: string
  readonly Flags: number
  readonly Value: string | null
  readonly Session?: string
  readonly CreateIndex: number
  readonly ModifyIndex: number
}

export function entries(answer: Answer): KvJson[] {
  assert.equal(answer.status, 200, `expected 200, got ${answer.status}: ${answer.text}`)
  return answer.json() as KvJson[]
}

export function b64(text: string): string {
  return Buffer.from(text).toString('base64')
}

/** **prompt**: answered less than 1 000 ms after the triggering write returned. */
export function assertPrompt(answer: Answer, triggerReturnedAtMs: number, what: string): void {
  const lagMs = answer.receivedAtMs - triggerReturnedAtMs
  assert.ok(lagMs < 1000, `${what}: answered ${lagMs.toFixed(0)} ms after the trigger, expected < 1000 ms`)
}

/** **≈W**: elapsed in [W − 5 ms, W × 17/16 + 500 ms]. */
export function assertAboutMs(elapsedMs: number, waitMs: number, what: string): void {
  const lowMs = waitMs - 5
  const highMs = (waitMs * 17) / 16 + 500
  assert.ok(
    elapsedMs >= lowMs && elapsedMs <= highMs,
    `${what}: took ${elapsedMs.toFixed(0)} ms, expected within [${lowMs}, ${highMs}] ms`,
  )
}

/** Runs `action` `delayMs` after now (the spec's timed triggers, e.g. "PUT at 200 ms"); resolves with the
 *  performance.now() at which the action's request returned. */
export function after(delayMs: number, action: () => Promise<unknown>): Promise<number> {
  return new Promise((resolve, reject) => {
    setTimeout(() => {
      action().then(() => resolve(performance.now()), reject)
    }, delayMs)
  })
}

/** Tracks whether a promise has settled, for quiet windows. */
export function track<T>(promise: Promise<T>): { readonly promise: Promise<T>; isSettled(): boolean } {
  let isSettled = false
  void promise.then(
    () => (isSettled = true),
    () => (isSettled = true),
  )
  return { promise, isSettled: () => isSettled }
}

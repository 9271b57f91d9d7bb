/** The one place that talks to the `consul` npm client (style.md: only consul/ imports it). Builds one
 *  client per configured server (keep-alive agent, token/dc defaults) and wraps the few calls the proxy
 *  makes in typed functions, because the client's own typings omit `ctx`, `buffer`, `index` and `timeout`.
 *  Failures become a ConsulCallError with a kind the watch and the admin API can branch on. */

import { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import Consul from 'consul'
import type { Config } from '../config/index.js'
import { ConsulCallError } from './errors.js'

export interface ConsulEndpoint {
  /** `host:port`, as shown in /status and logs. */
  readonly name: string
  readonly client: Consul
}

/** One KV entry as Consul lists it, with the value kept as bytes (UTF-8 is validated per key later). */
export interface RawKvEntry {
  readonly Key: string
  readonly Flags: number
  readonly Value: Buffer | null
  readonly CreateIndex: number
  readonly ModifyIndex: number
}

export interface RawListing {
  readonly statusCode: number
  readonly headers: IncomingHttpHeaders
  /** Undefined for a 404 or an empty 200 array; otherwise whatever the body decoded to (checked by the caller). */
  readonly body: unknown
}

/** Cancels an in-flight call (the watch's watchdog and the index probe use it). */
export class CallCanceller {
  readonly ctx: EventEmitter & { includeResponse: boolean } = Object.assign(new EventEmitter(), { includeResponse: true })
  cancel(): void {
    this.ctx.emit('cancel')
  }
}

export function createEndpoints(config: Config): ConsulEndpoint[] {
  const servers = config.consul.servers.length > 0 ? config.consul.servers : [config.consul.address]
  return servers.map((server) => {
    const defaults: Record<string, string> = {}
    if (config.consul.token !== null) defaults['token'] = config.consul.token
    if (config.consul.datacenter !== null) defaults['dc'] = config.consul.datacenter
    const host = server.host.includes(':') ? `[${server.host}]` : server.host
    return {
      name: `${host}:${server.port}`,
      client: new Consul({ host, port: server.port, secure: config.consul.scheme === 'https', defaults }),
    }
  })
}

interface LooseKv {
  get(options: Record<string, unknown>): Promise<unknown>
  set(options: Record<string, unknown>): Promise<unknown>
}

function kvOf(endpoint: ConsulEndpoint): LooseKv {
  return endpoint.client.kv as unknown as LooseKv
}

/** Converts whatever the client threw into a ConsulCallError naming the server. */
export function toCallError(endpoint: ConsulEndpoint, err: unknown): ConsulCallError {
  if (err instanceof ConsulCallError) return err
  const e = err as { isAbort?: boolean; isTimeout?: boolean; isResponse?: boolean; statusCode?: number; code?: string; message?: string }
  if (e.isAbort === true) return new ConsulCallError('aborted', endpoint.name, 'request aborted', undefined, { cause: err })
  if (e.isTimeout === true) return new ConsulCallError('timeout', endpoint.name, e.message ?? 'request timed out', undefined, { cause: err })
  if (e.isResponse === true) {
    return new ConsulCallError('status', endpoint.name, e.message ?? 'request failed', e.statusCode, { cause: err })
  }
  if (typeof e.code === 'string') {
    return new ConsulCallError('network', endpoint.name, `${e.code}${e.message === undefined ? '' : ` (${e.message})`}`, undefined, { cause: err })
  }
  return new ConsulCallError('protocol', endpoint.name, e.message ?? String(err), undefined, { cause: err })
}

/** One recursive read of `prefix`, blocking when `index` > 0. */
export async function readListing(
  endpoint: ConsulEndpoint,
  request: { prefix: string; index: bigint; waitText: string | null; timeoutMs: number; canceller: CallCanceller },
): Promise<RawListing> {
  const options: Record<string, unknown> = {
    key: request.prefix,
    recurse: true,
    buffer: true,
    ctx: request.canceller.ctx,
    timeout: request.timeoutMs,
  }
  if (request.index > 0n) options['index'] = request.index.toString()
  if (request.waitText !== null) options['wait'] = request.waitText
  try {
    const result = (await kvOf(endpoint).get(options)) as [IncomingMessage, unknown?]
    const [response, body] = result
    return { statusCode: response.statusCode ?? 0, headers: response.headers, body }
  } catch (err) {
    throw toCallError(endpoint, err)
  }
}

/** `GET <prefix>?keys&separator=/`: a tiny non-blocking read whose only use is its X-Consul-Index. */
export async function readPrefixIndex(endpoint: ConsulEndpoint, prefix: string, timeoutMs: number): Promise<string | undefined> {
  const canceller = new CallCanceller()
  const kv = endpoint.client.kv as unknown as { keys(options: Record<string, unknown>): Promise<unknown> }
  let response: IncomingMessage | undefined
  try {
    response = ((await kv.keys({ key: prefix, separator: '/', ctx: canceller.ctx, timeout: timeoutMs })) as [IncomingMessage, unknown])[0]
  } catch (err) {
    // kv.keys rejects a 404 (nothing under the prefix), which still carries the index we want.
    const failed = err as { statusCode?: number; response?: IncomingMessage }
    if (failed.statusCode !== 404 || failed.response === undefined) throw toCallError(endpoint, err)
    response = failed.response
  }
  const header = response.headers['x-consul-index']
  return Array.isArray(header) ? header[0] : header
}

/** Creates a key only when it does not exist (`?cas=0`), for seeding the dev server; resolves to Consul's true/false. */
export async function createKeyIfAbsent(endpoint: ConsulEndpoint, key: string, value: Buffer, timeoutMs: number): Promise<boolean> {
  try {
    return (await kvOf(endpoint).set({ key, value, cas: '0', timeout: timeoutMs })) === true
  } catch (err) {
    throw toCallError(endpoint, err)
  }
}

/** Parses an `X-Consul-Index` header as an unsigned 64-bit decimal; undefined when missing or malformed. */
export function parseIndexHeader(header: string | string[] | undefined): bigint | undefined {
  const text = Array.isArray(header) ? header[0] : header
  if (text === undefined || !/^\d{1,20}$/.test(text)) return undefined
  const value = BigInt(text)
  return value <= 0xffff_ffff_ffff_ffffn ? value : undefined
}

export function closeEndpoints(endpoints: readonly ConsulEndpoint[]): void {
  for (const endpoint of endpoints) endpoint.client.destroy()
}

/** Starts the admin API for one test against real parts: the embedded Consul, a real `Primary` watching it
 *  (its live KvState and `consulWatch.waitForApplied`), the product's writer for the configured mode, lua-compat's compile check for
 *  Lua and a `node:vm` parse for JS. The backend below is what src/cluster/ will implement; the few parts the
 *  primary does not have yet (guard, readiness of workers, connection stats, extra metrics) are plain fields a
 *  test sets. Everything is closed by `t.after`.
 *
 *    const h = await startAdminHarness(t)
 *    const res = await h.request('POST', '/upstream/test', { body: '{"servers":[...]}' })
 *    assert.equal(res.status, 200)
 */

import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { TestContext } from 'node:test'
import { Script } from 'node:vm'
import { createLuaRuntime, type LuaRuntime } from '../../lua-compat/index.js'
import { type AdminBackend, type AdminServer, type ConnectionStats, type Readiness, type ScriptErrorReport, startAdminServer } from '../../src/admin/index.js'
import { buildStatusBody, type JsonValue } from '../../src/checkups/index.js'
import { adminOptionsFrom, adminWriterFor } from '../../src/cluster/admin-backend.js'
import { Primary } from '../../src/cluster/primary.js'
import { buildConfig, type Config } from '../../src/config/index.js'
import type { KvState } from '../../src/consul/apply.js'
import { closeEndpoints, createEndpoints } from '../../src/consul/client.js'
import { classifyKey, type ScriptRuntime } from '../../src/consul/keys.js'
import type { Listing, ListingReason, WatchHandler } from '../../src/consul/watch.js'
import { createSilentLogger, type Logger } from '../../src/log.js'
import { PRODUCT_VERSION } from '../../src/version.js'
import { type DevConsul, startDevConsul } from './dev-consul.js'

export const PREFIX = 'config/slardar/'

export interface HarnessOptions {
  /** Merged over the harness's config (admin, upstreams, stream, consul, …); `consul.address` is set for you. */
  readonly config?: Readonly<Record<string, unknown>>
  /** Reuse a running embedded Consul (e.g. one seeded before the primary starts). */
  readonly consul?: DevConsul
  readonly log?: Logger
  /** Admin bound to this host (default 127.0.0.1); the port is always chosen by the OS. */
  readonly adminHost?: string
  /** Wait for the primary's first listing before returning (default true). */
  readonly waitForFirstListing?: boolean
}

export interface AdminResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
  json(): unknown
}

export interface RequestOptions {
  readonly body?: string | Buffer
  readonly headers?: Readonly<Record<string, string>>
}

/** The settable parts of the test backend, standing where the primary's not-yet-built pieces will be. */
export interface BackendControls {
  readiness: Readiness
  connectionStats: ConnectionStats
  metricsText: string
  /** Keys POST /guard/release reports as released; null = guard inactive. */
  heldKeys: string[] | null
  readonly adminDeletions: { key: string; modifyIndex: bigint }[]
  statusDocument: (() => JsonValue) | null
  /** Makes this node slow to apply each listing (a busy primary), to show that answers wait for it. */
  applyDelayMs: number
}

export interface AdminHarness {
  readonly consul: DevConsul
  readonly primary: Primary
  readonly admin: AdminServer
  readonly config: Config
  readonly controls: BackendControls
  request(method: string, path: string, options?: RequestOptions): Promise<AdminResponse>
  /** The value of a KV key (relative to the prefix) read through the consul client, or undefined. */
  kvGet(key: string): Promise<{ value: string; modifyIndex: bigint } | undefined>
  kvSet(key: string, value: string): Promise<void>
}

export async function startAdminHarness(t: TestContext, options: HarnessOptions = {}): Promise<AdminHarness> {
  const consul = options.consul ?? (await startDevConsul(t))
  const log = options.log ?? createSilentLogger()
  const extra = options.config ?? {}
  const config = buildConfig(
    {
      global: { checkup_timer_interval: 60, default_heartbeat_enable: false },
      ...extra,
      consul: { wait: '2s', timeout: 2, ...(extra['consul'] as object | undefined), address: consul.addr },
      // Tests never share a last-known-good file: one left behind would become the next primary's "before" state.
      snapshot: { enable: false },
    },
    'test',
  )
  const lua = await createLuaRuntime({
    timeoutMs: 1000,
    asyncTimeoutMs: 2000,
    regexCacheSize: 16,
    sharedDicts: {},
    workerId: 0,
    workerCount: 1,
    productVersion: PRODUCT_VERSION,
    log: { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
    readConfig: () => undefined,
  })
  t.after(() => lua.close())
  const compileScript = (runtime: ScriptRuntime, name: string, source: string): string | null => compile(lua, runtime, name, source)

  const controls: BackendControls = {
    readiness: { isReady: true, source: 'consul' },
    connectionStats: { active: 0, accepts: 0, handled: 0, requests: 0, reading: 0, writing: 0, waiting: 0 },
    metricsText: '',
    heldKeys: [],
    adminDeletions: [],
    statusDocument: null,
    applyDelayMs: 0,
  }
  const primary = new Primary(config, log, { compileScript })
  const listeners = new Set<(state: KvState) => void>()
  primary.onApplied((change) => {
    for (const listener of listeners) listener(change.state)
  })
  const watch = primary.consulWatch
  if (watch !== null) {
    // Only for tests that show answers wait for a slow node: delay this node's apply of each listing.
    const handler = (watch as unknown as { options: { handler: WatchHandler } }).options.handler
    const applyListing = handler.onListing.bind(handler)
    handler.onListing = async (listing: Listing, reason: ListingReason) => {
      if (controls.applyDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, controls.applyDelayMs))
      await applyListing(listing, reason)
    }
  }
  t.after(() => primary.stop())
  const started = primary.start()
  if (options.waitForFirstListing !== false) await started
  else started.catch(() => undefined)

  const endpoints = config.consul.enable ? createEndpoints(config) : []
  t.after(() => closeEndpoints(endpoints))
  const startTimeMs = Date.now()
  const staticUpstreams = new Map(Object.entries(config.upstreams))
  const backend: AdminBackend = {
    kvState: () => primary.state,
    onStateApplied: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    statusBody: () => {
      const override = controls.statusDocument?.()
      if (override !== undefined) return JSON.stringify(override)
      return buildStatusBody({
        slardarVersion: PRODUCT_VERSION,
        startTimeMs,
        heartbeat: primary.checkups.heartbeat,
        confHash: null,
        shdConfigVersion: 0,
        configTimer: { 'worker-0': 'alive' },
        consul: { enabled: config.consul.enable, last_index: watch?.status().lastIndex ?? null },
        upstreams: primary.checkups.table.upstreams(),
        sources: new Map(),
        nowMs: Date.now(),
      })
    },
    staticUpstreams: () => staticUpstreams,
    compileScript,
    scriptErrors: (runtime) => scriptRejections(primary.state, config, runtime),
    ...adminWriterFor(config, primary, endpoints),
    recordAdminDeletion: (key, modifyIndex) => {
      controls.adminDeletions.push({ key, modifyIndex })
      primary.recordAdminDeletion(key, modifyIndex)
    },
    get guard() {
      const held = controls.heldKeys
      if (held === null) return null
      return { release: () => held.splice(0, held.length).length }
    },
    readiness: () => controls.readiness,
    connectionStats: () => controls.connectionStats,
    metricsText: () => Promise.resolve(controls.metricsText),
  }
  const admin = await startAdminServer({
    options: { ...adminOptionsFrom(config), host: options.adminHost ?? '127.0.0.1', port: 0 },
    backend,
    log,
  })
  t.after(() => admin.close())

  return {
    consul,
    primary,
    admin,
    config,
    controls,
    request: (method, path, requestOptions = {}) => adminRequest(admin, method, path, requestOptions),
    kvGet: async (key) => {
      const entry = (await consul.consul.kv.get(PREFIX + key)) as { Value: string | null; ModifyIndex: number } | undefined
      if (entry === undefined) return undefined
      return { value: entry.Value ?? '', modifyIndex: BigInt(entry.ModifyIndex) }
    },
    kvSet: async (key, value) => {
      await consul.consul.kv.set(PREFIX + key, value)
    },
  }
}

function compile(lua: LuaRuntime, runtime: ScriptRuntime, name: string, source: string): string | null {
  if (runtime === 'lua') {
    const result = lua.check(name, source)
    return result.ok ? null : result.error
  }
  try {
    new Script(source, { filename: name })
    return null
  } catch (err) {
    return (err as Error).message
  }
}

/** Compile rejections of active script keys, as GET /lua|/js list them. */
function scriptRejections(state: KvState, config: Config, runtime: ScriptRuntime): ScriptErrorReport[] {
  const reports: ScriptErrorReport[] = []
  for (const [key, rejection] of state.rejections) {
    const keyClass = classifyKey(key, config.consul)
    if (keyClass.kind !== 'script' || keyClass.runtime !== runtime) continue
    reports.push({ name: keyClass.name, version: rejection.valueMd5, error: rejection.message, atMs: Date.now() })
  }
  return reports
}

/** One request on its own connection, with every header as given (Host and Origin included). */
export function adminRequest(admin: { host: string; port: number }, method: string, path: string, options: RequestOptions = {}): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers }
    // GET and DELETE bodies are not chunked by Node's client: frame every body explicitly.
    if (options.body !== undefined && !Object.keys(headers).some((name) => /^(content-length|transfer-encoding)$/i.test(name))) {
      headers['Content-Length'] = String(Buffer.byteLength(options.body))
    }
    const req = httpRequest({ host: admin.host, port: admin.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

/** A compact upstream value with heartbeats off, for tests that only need something valid. */
export function upstreamBody(...ports: number[]): string {
  return JSON.stringify({ servers: ports.map((port) => ({ host: '127.0.0.1', port })) })
}

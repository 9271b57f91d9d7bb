/** Starts the whole product (`SingleProcess`: primary, script store, HTTP and stream proxies, admin API) for one
 *  test, the way `slardar start` runs it, against the embedded Consul: listeners on 127.0.0.1 with OS-chosen ports,
 *  no snapshot file (a file left behind would become the next test's "before" state), slow heartbeats and a short
 *  watch wait unless the test says otherwise. Everything is shut down by `t.after`.
 *
 *    const p = await startProduct(t, { kv: { 'http_upstreams/a.test': upstreamJson(backend.port) } })
 *    const res = await p.request({ host: 'a.test', path: '/' })
 *    await p.kvPut('http_upstreams/b.test', upstreamJson(other.port))     // through the real `consul` client
 *    const status = (await p.admin('GET', '/status')).json()
 *
 *    await p.stopConsul(); await p.startConsul()   // same port; with restartableConsul the KV survives, as on a real agent
 *
 *  Requests to the proxy each use their own connection, so a test never sees a keep-alive socket from another. */

import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { TestContext } from 'node:test'
import { SingleProcess } from '../../src/cluster/single-process.js'
import { buildConfig, type Config } from '../../src/config/index.js'
import { createSilentLogger, type Logger } from '../../src/log.js'
import { adminRequest, type AdminResponse, type RequestOptions } from './admin-harness.js'
import { LOOPBACK } from './backends.js'
import Consul from 'consul'
import { startDevServer, type DevServer } from '../../src/consul/devserver/index.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const PREFIX = 'config/slardar/'

export interface ProductOptions {
  /** slardar.json5 sections merged one level deep over the defaults below (e.g. `{ guard: { enable: false } }`). */
  readonly config?: Readonly<Record<string, unknown>>
  /** KV entries (keys below the prefix) written before the product starts, so its first listing holds them. */
  readonly kv?: Readonly<Record<string, string>>
  /** Where the app log goes (default: nowhere); a captured logger shows what an operator would read. */
  readonly log?: Logger
  /** Consul keeps its KV and index in a temp directory, so stopConsul()/startConsul() bring it back on the same
   *  port with the same data, as a real agent does after a restart (default false: in memory only). */
  readonly restartableConsul?: boolean
}

export interface ProxyResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
}

export interface ProxyRequest {
  readonly host: string
  readonly method?: string
  readonly path?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
  /** The request fails after this long without a complete response (default 10 s), so a hang names itself. */
  readonly timeoutMs?: number
}

export interface Product {
  readonly slardar: SingleProcess
  /** The proxy's port on 127.0.0.1, for clients other than request(). */
  readonly proxyPort: number
  /** The embedded Consul running now (null while stopped, or with consul.enable false); pause() black-holes it. */
  readonly consulServer: DevServer | null
  /** Stops the embedded Consul: parked queries and connections are dropped, the port refuses connections. */
  stopConsul(): Promise<void>
  /** Starts it again on the same port (needs `restartableConsul` to keep the KV). */
  startConsul(): Promise<void>
  /** One request to the HTTP proxy on a fresh connection. */
  request(request: ProxyRequest): Promise<ProxyResponse>
  /** One request to the admin API (Host 127.0.0.1, no Origin, as an admin client sends it). */
  admin(method: string, path: string, options?: RequestOptions): Promise<AdminResponse>
  /** Writes a KV key below the prefix through the `consul` client; returns once Consul accepted it. */
  kvPut(key: string, value: string): Promise<void>
  kvDelete(key: string): Promise<void>
}

const DEFAULT_SECTIONS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  global: { checkup_timer_interval: 60, default_heartbeat_enable: false },
  consul: { wait: '2s', timeout: 2 },
  proxy: { drain_timeout: 2 },
  snapshot: { enable: false },
  jobs: { full_resync: null },
  log: { access: 'off', level: 'silent' },
}

export async function startProduct(t: TestContext, options: ProductOptions = {}): Promise<Product> {
  const extra = options.config ?? {}
  const isConsulEnabled = (extra['consul'] as { enable?: boolean } | undefined)?.enable !== false
  // Not startDevConsul(t): node:test runs after-hooks in the order they were added, and Consul must outlive the
  // product's shutdown here as it does in production (else the last watch round fails and backs off while stopping).
  const consulDataDir = isConsulEnabled && options.restartableConsul === true ? await mkdtemp(join(tmpdir(), 'slardar-consul-')) : null
  let devServer = isConsulEnabled ? await startDevServer({ listen: `${LOOPBACK}:0`, data: consulDataDir }) : null
  if (devServer === null && options.kv !== undefined) throw new Error('kv entries need Consul; this product runs with consul.enable: false')
  const consulPort = devServer?.port ?? 0
  const consul = devServer === null ? null : new Consul({ host: LOOPBACK, port: consulPort })
  const closeConsul = async (): Promise<void> => {
    consul?.destroy()
    await devServer?.close()
    if (consulDataDir !== null) await rm(consulDataDir, { recursive: true, force: true })
  }
  const merged: Record<string, unknown> = { ...DEFAULT_SECTIONS }
  for (const [section, values] of Object.entries(extra)) {
    const base = DEFAULT_SECTIONS[section]
    merged[section] = base !== undefined && isPlainObject(values) ? { ...base, ...values } : values
  }
  if (devServer !== null) merged['consul'] = { ...(merged['consul'] as object), address: `${LOOPBACK}:${devServer.port}` }
  const built = buildConfig(merged, 'test')
  // Port 0 is not a valid slardar.json5 address (config.md); the listeners take it for tests and report the real port.
  const config = {
    ...built,
    proxy: { ...built.proxy, listen: [{ host: LOOPBACK, port: 0 }] },
    admin: { ...built.admin, listen: { host: LOOPBACK, port: 0 } },
  } as Config

  let slardar: SingleProcess
  try {
    for (const [key, value] of Object.entries(options.kv ?? {})) await consul?.kv.set(PREFIX + key, value)
    slardar = await SingleProcess.start(config, options.log ?? createSilentLogger())
  } catch (err) {
    await closeConsul()
    throw err
  }
  t.after(async () => {
    await slardar.shutdown()
    await closeConsul()
  })
  const proxyAddress = slardar.addresses.proxy[0]
  const adminAddress = slardar.addresses.admin
  if (proxyAddress === undefined || adminAddress === null) throw new Error('the product started without a proxy or admin listener')
  const requireConsul = (): Consul => {
    if (consul === null) throw new Error('this product runs with consul.enable: false; there is no KV to write')
    return consul
  }
  return {
    slardar,
    proxyPort: proxyAddress.port,
    get consulServer() {
      return devServer
    },
    stopConsul: async () => {
      requireConsul()
      const running = devServer
      devServer = null
      await running?.close()
    },
    startConsul: async () => {
      requireConsul()
      if (devServer !== null) throw new Error('the embedded Consul is already running')
      devServer = await startDevServer({ listen: `${LOOPBACK}:${consulPort}`, data: consulDataDir })
    },
    request: (request) => proxyRequest(proxyAddress.port, request),
    admin: (method, path, requestOptions) => adminRequest(adminAddress, method, path, requestOptions),
    kvPut: async (key, value) => {
      await requireConsul().kv.set(PREFIX + key, value)
    },
    kvDelete: async (key) => {
      await requireConsul().kv.del(PREFIX + key)
    },
  }
}

/** One request on its own connection to 127.0.0.1:`port`, with `Host` as given. */
export function proxyRequest(port: number, request: ProxyRequest): Promise<ProxyResponse> {
  const method = request.method ?? 'GET'
  const path = request.path ?? '/'
  const timeoutMs = request.timeoutMs ?? 10_000
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: request.host, ...request.headers }
    if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body))
    const req = httpRequest({ host: LOOPBACK, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') })
      })
      res.on('error', reject)
    })
    const timer = setTimeout(() => {
      req.destroy(new Error(`${method} ${path} (Host: ${request.host}) got no complete response within ${timeoutMs} ms`))
    }, timeoutMs)
    req.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    req.end(request.body)
  })
}

export interface EchoBackend {
  readonly port: number
  /** Each request seen: method, path with query, headers (lower-cased names) and when its body had arrived
   *  (`performance.now()`). */
  readonly seen: readonly { readonly method: string; readonly path: string; readonly headers: IncomingHttpHeaders; readonly atMs: number }[]
  close(): Promise<void>
}

/** An HTTP backend that answers 200 with its `name` as the body and `X-Backend: <name>`, recording every request
 *  when its body has arrived (before answering), so a test can tell which upstream served a request, what the proxy
 *  sent it, and that a slow request (`delayMs`) is in flight. Closed by `t.after`. */
export async function startEchoBackend(t: TestContext, name: string, options: { readonly delayMs?: number } = {}): Promise<EchoBackend> {
  const seen: { method: string; path: string; headers: IncomingHttpHeaders; atMs: number }[] = []
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, atMs: performance.now() })
      const answer = (): void => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name), 'x-backend': name })
        res.end(name)
      }
      if (options.delayMs === undefined) answer()
      else setTimeout(answer, options.delayMs)
    })
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, LOOPBACK, () => resolve())
  })
  let closing: Promise<void> | null = null
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
    return closing
  }
  t.after(close)
  return { port: (server.address() as AddressInfo).port, seen, close }
}

/** An upstream value with heartbeats off, one server per port on 127.0.0.1. */
export function upstreamJson(...ports: number[]): string {
  return JSON.stringify({ enable: false, servers: ports.map((port) => ({ host: LOOPBACK, port })) })
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

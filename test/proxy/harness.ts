/** Shared set-up for the proxy tests: a real HttpProxy on 127.0.0.1:0 over the production upstream path (a
 *  CheckupsPrimary's table filled through parseUpstreamJson, an AttemptPlanner whose feedback goes to the primary, as
 *  with `workers: 0`), an access log in a temp file, an app log the test can read, and small HTTP clients and
 *  backends. Not a test file itself. */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import pino from 'pino'
import { AttemptPlanner, CheckupsPrimary, parseUpstreamJson, upstreamDefaultsFrom } from '../../src/checkups/index.js'
import type { ApplyReport } from '../../src/checkups/index.js'
import { buildConfig } from '../../src/config/index.js'
import type { Config } from '../../src/config/index.js'
import { createAccessLog } from '../../src/log.js'
import { HttpProxy } from '../../src/proxy/index.js'
import type { ScriptHost } from '../../src/scripts/index.js'
import { LOOPBACK } from '../support/backends.js'

export interface ProxyHarness {
  readonly proxy: HttpProxy
  readonly port: number
  readonly primary: CheckupsPrimary
  readonly config: Config
  /** Installs (or replaces) an upstream from Slardar JSON, as the Consul watcher would; returns the install report
   *  after handing its removed servers to the proxy, as the cluster wiring does. */
  setUpstream(name: string, value: unknown): ApplyReport
  deleteUpstream(name: string): ApplyReport
  /** Parsed access-log lines written so far. */
  accessLines(): Promise<Record<string, string | number>[]>
  /** App-log lines at warn level and above. */
  readonly appLog: Record<string, unknown>[]
}

export interface HarnessOptions {
  /** `proxy.*` overrides in slardar.json5 terms (seconds, sizes). */
  readonly proxy?: Record<string, unknown>
  readonly upstreams?: Record<string, unknown>
  readonly scripts?: ScriptHost | null
}

export async function startProxy(t: TestContext, options: HarnessOptions = {}): Promise<ProxyHarness> {
  const built = buildConfig({ proxy: { ...options.proxy }, global: { default_heartbeat_enable: false } }, 'test')
  // Port 0 is not a valid slardar.json5 address, but the proxy takes it for tests.
  const config = { ...built, proxy: { ...built.proxy, listen: [{ host: LOOPBACK, port: 0 }] } } as Config
  const dir = await mkdtemp(join(tmpdir(), 'slardar-proxy-'))
  const accessPath = join(dir, 'access.log')
  const accessLog = createAccessLog(accessPath)
  const appLog: Record<string, unknown>[] = []
  const log = pino({ level: 'warn' }, new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') appLog.push(JSON.parse(line) as Record<string, unknown>)
      callback()
    },
  }))
  const primary = new CheckupsPrimary({
    checkupTimerIntervalSec: 60, checkupTimerOvertimeSec: 60, heartbeatConcurrency: 64, resolveIntervalSec: 30,
    onBroadcast: () => undefined,
  })
  const planner = new AttemptPlanner({ nextUpstream: config.proxy.next_upstream, onFeedback: (report) => primary.report(report) })
  const proxy = new HttpProxy({ config, upstreams: primary.table, planner, scripts: options.scripts ?? null, accessLog, log })
  const [address] = await proxy.listen()
  t.after(async () => {
    await proxy.shutdown(1000)
    primary.stop()
    await accessLog.close()
    await rm(dir, { recursive: true, force: true })
  })
  const defaults = upstreamDefaultsFrom(config)
  const harness: ProxyHarness = {
    proxy,
    port: address!.port,
    primary,
    config,
    setUpstream(name, value) {
      const parsed = parseUpstreamJson(`http_upstreams/${name}`, value, defaults)
      if (!parsed.ok) throw new Error(parsed.message)
      const { report } = primary.install([{ kind: 'set', name, definition: parsed.upstream }])
      proxy.closeServers(report.removed)
      proxy.keepServers(report.added)
      return report
    },
    deleteUpstream(name) {
      const { report } = primary.install([{ kind: 'delete', name }])
      proxy.closeServers(report.removed)
      return report
    },
    async accessLines() {
      await accessLog.flush()
      const text = await readFile(accessPath, 'utf8').catch(() => '')
      return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, string | number>)
    },
    appLog,
  }
  for (const [name, value] of Object.entries(options.upstreams ?? {})) harness.setUpstream(name, value)
  return harness
}

/** An upstream of the given ports on 127.0.0.1, heartbeat off (servers stay routable unless passive health ejects). */
export function upstreamOn(ports: readonly number[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { enable: false, servers: ports.map((port) => ({ host: LOOPBACK, port })), ...extra }
}

export interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  readonly body: Buffer
  readonly text: string
}

export interface SendOptions {
  readonly method?: string
  readonly path?: string
  /** Sent as given; include `Host` yourself (no automatic Host header). */
  readonly headers?: Record<string, string | string[]>
  readonly body?: Buffer | string
}

/** One request on a fresh connection; the Host header is exactly what `headers` says (default `Host: test`). */
export function send(port: number, options: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: LOOPBACK,
      port,
      method: options.method ?? 'GET',
      path: options.path ?? '/',
      headers: { Host: 'test', ...options.headers },
      setHost: false,
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString() })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Writes `raw` on a new connection and collects everything until the proxy closes it (or `withinMs`). */
export function sendRaw(port: number, raw: string | Buffer, withinMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, LOOPBACK)
    let text = ''
    const timer = setTimeout(() => socket.destroy(), withinMs)
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(text)
    })
    socket.write(raw)
  })
}

/** What an echo backend saw of one request. */
export interface SeenRequest {
  readonly method: string
  readonly url: string
  readonly rawHeaders: readonly string[]
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  readonly remotePort: number
}

export interface EchoBackend {
  readonly port: number
  readonly seen: SeenRequest[]
  readonly sockets: Set<Socket>
  close(): Promise<void>
}

/** An HTTP/1.1 backend that records every request (with its body) and answers through `answer`, by default 200 with
 *  the body `echo:<port>`. */
export async function startEchoBackend(
  t: TestContext,
  answer?: (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void,
): Promise<EchoBackend> {
  const seen: SeenRequest[] = []
  const sockets = new Set<Socket>()
  let port = 0
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const record: SeenRequest = {
        method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, headers: req.headers,
        body: Buffer.concat(chunks), remotePort: req.socket.remotePort!,
      }
      seen.push(record)
      if (answer !== undefined) return answer(req, res, record)
      const body = `echo:${port}`
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) })
      res.end(body)
    })
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  port = (server.address() as AddressInfo).port
  let closing: Promise<void> | null = null
  const backend: EchoBackend = {
    port,
    seen,
    sockets,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
      return closing
    },
  }
  t.after(() => backend.close())
  return backend
}

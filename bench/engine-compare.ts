/** Picks the forwarding engine of src/proxy by measurement (performance.md, "Where the time goes"): the same tiny
 *  forwarding server on each candidate client, against one cheap backend, under one load loop, in alternating
 *  rounds (A B C A B C …), median rps per engine. `slardar` is the full HttpProxy on the chosen engine, so its ratio
 *  to `undici-client` is the cost of everything the product adds (routing, plan, header rules, access log), and
 *  `slardar-nolog` the same with `log.access: "off"`. No nginx or wrk here: `make bench` owns the comparison with nginx;
 *  this only ranks the engines against each other on the same machine.
 *
 *    node dist/bench/engine-compare.js [rounds=3] [seconds=4] [connections=64] [engine,engine,…]
 *
 *  Roles run as separate processes (backend, proxy, load) so no two share an event loop. */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createHttpServer, request as httpRequest, Agent as HttpAgent } from 'node:http'
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { createServer, connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import httpProxy from 'http-proxy'
import { Client, Pool } from 'undici'
import type { Dispatcher } from 'undici'
import { AttemptPlanner, parseUpstreamJson, UpstreamTable, upstreamDefaultsFrom } from '../src/checkups/index.js'
import { buildConfig } from '../src/config/index.js'
import { createAccessLog, createSilentLogger } from '../src/log.js'
import { HttpProxy } from '../src/proxy/index.js'

const ENGINES = ['slardar', 'slardar-nolog', 'undici-client', 'undici-pool', 'node-http', 'http-proxy'] as const
type Engine = (typeof ENGINES)[number]

const BODY = 'hello world\n'
const BACKEND_REPLY = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`

/** A backend as cheap as nginx's fixed reply: answers every `\r\n\r\n` with one canned response. */
function runBackend(): void {
  const server = createServer((socket) => {
    socket.setNoDelay(true)
    socket.on('error', () => undefined)
    let tail = ''
    socket.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1')
      let count = 0
      let at = text.indexOf('\r\n\r\n')
      let last = 0
      while (at !== -1) {
        count += 1
        last = at + 4
        at = text.indexOf('\r\n\r\n', last)
      }
      tail = text.slice(last)
      if (count > 0) socket.write(BACKEND_REPLY.repeat(count))
    })
  })
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }))
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection'])

/** The real thing: src/proxy's HttpProxy over a checkups table, access log on (to a temp file), as in production. */
async function runSlardar(backendPort: number, hasAccessLog: boolean): Promise<void> {
  const config = buildConfig({ proxy: { listen: ['127.0.0.1:1'] }, global: { default_heartbeat_enable: false } }, 'bench')
  const table = new UpstreamTable()
  const parsed = parseUpstreamJson('http_upstreams/bench.test', { servers: [{ host: '127.0.0.1', port: backendPort }] }, upstreamDefaultsFrom(config))
  if (!parsed.ok) throw new Error(parsed.message)
  table.applyUpstreams([{ kind: 'set', name: 'bench.test', definition: parsed.upstream }])
  const planner = new AttemptPlanner({ nextUpstream: config.proxy.next_upstream, onFeedback: () => undefined })
  const accessLog = createAccessLog(hasAccessLog ? join(await mkdtemp(join(tmpdir(), 'engine-compare-')), 'access.log') : 'off')
  const proxy = new HttpProxy({
    config: { proxy: { ...config.proxy, listen: [{ host: '127.0.0.1', port: 0 }] } },
    upstreams: table, planner, scripts: null, accessLog, log: createSilentLogger(),
  })
  const [address] = await proxy.listen()
  reportReady(address!.port)
}

function runProxy(engine: Engine, backendPort: number): void {
  if (engine === 'slardar' || engine === 'slardar-nolog') {
    void runSlardar(backendPort, engine === 'slardar')
    return
  }
  const origin = `http://127.0.0.1:${backendPort}`
  let handle: (req: IncomingMessage, res: ServerResponse) => void
  if (engine === 'http-proxy') {
    const proxy = httpProxy.createProxyServer({ target: origin, agent: new HttpAgent({ keepAlive: true, maxSockets: Infinity }) })
    proxy.on('error', (_err, _req, res) => (res as ServerResponse).destroy())
    handle = (req, res) => proxy.web(req, res)
  } else if (engine === 'node-http') {
    const agent = new HttpAgent({ keepAlive: true, maxFreeSockets: 64, scheduling: 'lifo' })
    handle = (req, res) => {
      const headers: OutgoingHttpHeaders = {}
      const raw = req.rawHeaders
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!
        if (!HOP_BY_HOP.has(name.toLowerCase())) headers[name] = raw[i + 1]!
      }
      const upstream = httpRequest({ host: '127.0.0.1', port: backendPort, method: req.method, path: req.url, headers, agent })
      upstream.on('response', (response) => {
        const out: string[] = []
        const rh = response.rawHeaders
        for (let i = 0; i < rh.length; i += 2) {
          if (!HOP_BY_HOP.has(rh[i]!.toLowerCase())) out.push(rh[i]!, rh[i + 1]!)
        }
        res.writeHead(response.statusCode ?? 502, out)
        response.pipe(res)
      })
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    }
  } else {
    const dispatcher: Pick<Dispatcher, 'dispatch'> = engine === 'undici-pool'
      ? new Pool(origin, { keepAliveTimeout: 4000 })
      : new ClientPool(origin)
    handle = (req, res) => {
      const headers: string[] = []
      const raw = req.rawHeaders
      for (let i = 0; i < raw.length; i += 2) {
        if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!)
      }
      dispatcher.dispatch({ origin, method: req.method as Dispatcher.HttpMethod, path: req.url!, headers, body: null }, new Forward(res))
    }
  }
  const server = createHttpServer({ keepAliveTimeout: 15000 }, handle)
  server.listen(0, '127.0.0.1', () => reportReady((server.address() as AddressInfo).port))
}

/** Tells the parent the port, then answers its `cpu` question with the CPU time (µs) spent since: divided by the
 *  requests served, that is the proxy's cost per request, which the rps alone hides when the load loop shares
 *  the cores. */
function reportReady(port: number): void {
  const base = process.cpuUsage()
  process.on('message', () => {
    const used = process.cpuUsage(base)
    process.send?.({ cpuUs: used.user + used.system })
  })
  process.send?.({ port })
}

/** The legacy (native, unwrapped) undici handler shape: status and raw headers straight into writeHead. */
class Forward implements Dispatcher.DispatchHandler {
  constructor(private readonly res: ServerResponse) {}
  onConnect(): void {}
  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    const out: string[] = []
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1')
      if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, raw[i + 1]!.toString('latin1'))
    }
    this.res.writeHead(status, out)
    this.res.on('drain', resume)
    return true
  }
  onData(chunk: Buffer): boolean {
    return this.res.write(chunk)
  }
  onComplete(): void {
    this.res.end()
  }
  onError(): void {
    this.res.destroy()
  }
}

/** One undici Client per connection, idle ones on a LIFO stack: the shape src/proxy uses to know whether a request
 *  went out on a reused socket. */
class ClientPool {
  readonly #idle: Client[] = []
  constructor(readonly origin: string) {}
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const client = this.#idle.pop() ?? new Client(this.origin, { keepAliveTimeout: 4000 })
    const onComplete = handler.onComplete!.bind(handler)
    handler.onComplete = (trailers) => {
      this.#idle.push(client)
      onComplete(trailers)
    }
    return client.dispatch(options, handler)
  }
}

/** Keep-alive load loop: `connections` raw sockets, one request in flight on each, counts complete responses. */
function runLoad(port: number, seconds: number, connections: number): void {
  const request = Buffer.from('GET /bench HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: engine-compare\r\n\r\n')
  let completed = 0
  let total = 0
  let isCounting = false
  const sockets: Socket[] = []
  for (let i = 0; i < connections; i++) {
    const socket = connect(port, '127.0.0.1')
    socket.setNoDelay(true)
    sockets.push(socket)
    let buffered = ''
    socket.on('connect', () => socket.write(request))
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      for (;;) {
        const headEnd = buffered.indexOf('\r\n\r\n')
        if (headEnd === -1) return
        const match = /content-length: *(\d+)/i.exec(buffered.slice(0, headEnd))
        const responseEnd = headEnd + 4 + (match === null ? 0 : Number(match[1]))
        if (buffered.length < responseEnd) return
        buffered = buffered.slice(responseEnd)
        total += 1
        if (isCounting) completed += 1
        socket.write(request)
      }
    })
    socket.on('error', () => undefined)
  }
  setTimeout(() => {
    isCounting = true
    const startedMs = performance.now()
    setTimeout(() => {
      const elapsedSec = (performance.now() - startedMs) / 1000
      for (const socket of sockets) socket.destroy()
      process.send?.({ rps: completed / elapsedSec, total })
    }, seconds * 1000)
  }, 1000)
}

function startRole(args: string[]): Promise<{ child: ChildProcess; message: Record<string, number> }> {
  const child = fork(fileURLToPath(import.meta.url), args, { stdio: 'inherit' })
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve({ child, message: message as Record<string, number> }))
    child.once('exit', (code) => reject(new Error(`role ${args.join(' ')} exited with ${code}`)))
  })
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3)
  const seconds = Number(process.argv[3] ?? 4)
  const connections = Number(process.argv[4] ?? 64)
  const engines = process.argv[5] === undefined ? ENGINES : (process.argv[5].split(',') as Engine[])
  const backend = await startRole(['backend'])
  const results = new Map<Engine, { rps: number[]; cpuUs: number[] }>(engines.map((engine) => [engine, { rps: [], cpuUs: [] }]))
  for (let round = 0; round < rounds; round++) {
    for (const engine of engines) {
      const proxy = await startRole(['proxy', engine, String(backend.message.port)])
      const load = await startRole(['load', String(proxy.message.port), String(seconds), String(connections)])
      load.child.kill()
      const cpu = await new Promise<Record<string, number>>((resolve) => {
        proxy.child.once('message', (message) => resolve(message as Record<string, number>))
        proxy.child.send('cpu')
      })
      proxy.child.kill()
      const cpuUsPerRequest = cpu.cpuUs! / load.message.total!
      results.get(engine)!.rps.push(load.message.rps!)
      results.get(engine)!.cpuUs.push(cpuUsPerRequest)
      console.log(`round ${round + 1} ${engine}: ${Math.round(load.message.rps!)} rps, ${cpuUsPerRequest.toFixed(1)} µs CPU/request`)
    }
  }
  backend.child.kill()
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  const anchorEngine = engines.includes('http-proxy') ? 'http-proxy' : engines[engines.length - 1]!
  const anchor = median(results.get(anchorEngine)!.rps)
  console.log(`\nengine          median rps   vs ${anchorEngine.padEnd(12)} proxy CPU µs/request`)
  for (const [engine, { rps, cpuUs }] of results) {
    console.log(`${engine.padEnd(15)} ${String(Math.round(median(rps))).padStart(10)}   ${(median(rps) / anchor).toFixed(2).padStart(11)}x   ${median(cpuUs).toFixed(1).padStart(20)}`)
  }
}

const [role, ...rest] = process.argv.slice(2)
if (role === 'backend') runBackend()
else if (role === 'proxy') {
  // A clean exit on SIGTERM lets `node --cpu-prof` write its profile.
  process.once('SIGTERM', () => process.exit(0))
  runProxy(rest[0] as Engine, Number(rest[1]))
}
else if (role === 'load') runLoad(Number(rest[0]), Number(rest[1]), Number(rest[2]))
else await main()

/** Bare Node.js reverse proxies, one per process, for the `engines` case of `make bench` (issue #5:
 *  "compare http-proxy against an undici pool"). Each forwards every request to one backend port with a
 *  keep-alive pool of 64 sockets and streams the answer back; none does routing, retries or logging, so the
 *  numbers bound what the forwarding engine alone costs under Slardar's data path.
 *
 *  | engine | forwarding |
 *  |---|---|
 *  | `http-proxy` | `http-proxy`'s `proxy.web` with a keep-alive `http.Agent` |
 *  | `undici-pool` | `undici` `Pool.request`, the response body piped to the client |
 *  | `http-agent` | `http.request` with a keep-alive `http.Agent`, piped both ways |
 *  | `tcp-relay`, `lean-http`, `lean-http-cork`, `lean-undici`, `node-lean` | the lean prototypes (bench/lean/subjects.ts) |
 *
 *  Run: `node dist/bench/engines.js <engine> <listenPort> <backendPort>`; the runner (run.ts) starts and stops it. */

import { Agent, createServer, request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, RequestListener, ServerResponse } from 'node:http'
import { pathToFileURL } from 'node:url'
import httpProxy from 'http-proxy'
import { Pool } from 'undici'
import type { Dispatcher } from 'undici'
import { createLeanSubject, isLeanSubject, LEAN_SUBJECTS } from './lean/subjects.js'

/** The engines built on node:http's server (this file's listeners). */
export const NODE_HTTP_ENGINES = ['http-proxy', 'undici-pool', 'http-agent'] as const
type NodeHttpEngine = (typeof NODE_HTTP_ENGINES)[number]
export const ENGINES = [...NODE_HTTP_ENGINES, ...LEAN_SUBJECTS] as const
export type Engine = (typeof ENGINES)[number]

/** Matches the anchor nginx's `keepalive 64` and wrk's 64 connections. */
const POOL_SOCKETS = 64
/** Below nginx's 65 s backend keep-alive, like Slardar's `proxy.upstream_idle_timeout`. */
const IDLE_SOCKET_MS = 4_000

/** Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded; undici also refuses some of them outright. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const copy: OutgoingHttpHeaders = {}
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined && !HOP_BY_HOP.has(name)) copy[name] = value
  }
  return copy
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
}

function failGateway(res: ServerResponse): void {
  if (res.headersSent) res.destroy()
  else res.writeHead(502, { 'content-length': '0' }).end()
}

function keepAliveAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: POOL_SOCKETS, maxFreeSockets: POOL_SOCKETS, timeout: IDLE_SOCKET_MS })
}

function httpProxyEngine(backendOrigin: string): RequestListener {
  const proxy = httpProxy.createProxyServer({ target: backendOrigin, agent: keepAliveAgent() })
  proxy.on('error', (_err, _req, res) => {
    if ('writeHead' in res) failGateway(res)
    else res.destroy()
  })
  return (req, res) => proxy.web(req, res)
}

function undiciPoolEngine(backendOrigin: string): RequestListener {
  const pool = new Pool(backendOrigin, { connections: POOL_SOCKETS, keepAliveTimeout: IDLE_SOCKET_MS })
  return (req, res) => {
    pool
      .request({
        path: req.url ?? '/',
        method: req.method as Dispatcher.HttpMethod,
        headers: endToEnd(req.headers) as Record<string, string | string[]>,
        body: hasBody(req) ? req : null,
      })
      .then(
        (answer) => {
          res.writeHead(answer.statusCode, endToEnd(answer.headers))
          answer.body.pipe(res)
        },
        () => failGateway(res),
      )
  }
}

function httpAgentEngine(backendPort: number): RequestListener {
  const agent = keepAliveAgent()
  return (req, res) => {
    const upstream = httpRequest(
      { host: '127.0.0.1', port: backendPort, method: req.method, path: req.url, headers: endToEnd(req.headers), agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers))
        answer.pipe(res)
      },
    )
    upstream.on('error', () => failGateway(res))
    req.pipe(upstream)
  }
}

function listenerFor(engine: NodeHttpEngine, backendPort: number): RequestListener {
  const origin = `http://127.0.0.1:${backendPort}`
  switch (engine) {
    case 'http-proxy':
      return httpProxyEngine(origin)
    case 'undici-pool':
      return undiciPoolEngine(origin)
    case 'http-agent':
      return httpAgentEngine(backendPort)
  }
}

function isEngine(value: string | undefined): value is Engine {
  return (ENGINES as readonly string[]).includes(value ?? '')
}

function parsePort(value: string | undefined): number | null {
  const port = Number(value)
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : null
}

function main(argv: readonly string[]): void {
  const [engine, listenText, backendText] = argv
  const listenPort = parsePort(listenText)
  const backendPort = parsePort(backendText)
  if (!isEngine(engine) || listenPort === null || backendPort === null) {
    process.stderr.write(`usage: node dist/bench/engines.js <${ENGINES.join('|')}> <listenPort> <backendPort>\n`)
    process.exit(2)
  }
  const server = isLeanSubject(engine) ? createLeanSubject(engine, backendPort) : createServer(listenerFor(engine, backendPort))
  server.on('error', (err) => {
    process.stderr.write(`${engine}: ${err.message}\n`)
    process.exit(1)
  })
  server.listen(listenPort, '127.0.0.1')
  // A clean exit on SIGTERM lets `node --cpu-prof` write its profile.
  process.once('SIGTERM', () => process.exit(0))
}

// Only as a program: the runner imports ENGINES from here without starting a server.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2))

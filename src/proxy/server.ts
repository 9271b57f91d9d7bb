/** The HTTP proxy of one process: its listeners on every `proxy.listen` address, the client-connection bookkeeping
 *  behind `/y_nginx_status`, requests the parser refused (400/408/431, proxy.md §2.1 and §5), WebSocket upgrades,
 *  closing a removed server's connections, and the drain on shutdown (§10 steps 2–5). Each request becomes an
 *  Exchange (exchange.ts); upgrades go to UpgradeProxy (upgrade.ts). The cluster wiring decides when to call what.
 *
 *  ```ts
 *  const proxy = new HttpProxy({ config, upstreams: primary.table, planner, scripts, accessLog, log })
 *  const addresses = await proxy.listen()          // port 0 → the real port
 *  proxy.closeServers(report.removed)              // after each table install
 *  proxy.keepServers(report.added)                 // a server back before its drain ended keeps its connections
 *  const { cut } = await proxy.shutdown(config.proxy.drain_timeout * 1000)
 *  ``` */
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { AttemptPlanner, PeerRef } from '../checkups/index.js'
import type { AccessLog, Logger } from '../log.js'
import type { ScriptHost } from '../scripts/index.js'
import { isoTimeNow } from './access-record.js'
import type { HttpAccessRecord } from './access-record.js'
import { countResponse, createProxyCounters, NO_UPSTREAM_LABEL } from './counters.js'
import type { ProxyCounters } from './counters.js'
import { BAD_REQUEST, errorHeadersOf, HEADER_TOO_LARGE, ProxyListenError, REQUEST_TIMEOUT } from './errors.js'
import type { GeneratedError } from './errors.js'
import { Exchange } from './exchange.js'
import type { ExchangeContext, UpstreamLookup } from './exchange.js'
import { buildProxySettings } from './options.js'
import type { ProxyConfig, ProxySettings } from './options.js'
import { buildRawResponse, endWithResponse } from './raw-response.js'
import { newRequestId } from './request-id.js'
import { clientAddressOf } from './routing.js'
import { UpgradeProxy } from './upgrade.js'
import { UpstreamPools } from './upstream-pool.js'

export interface HttpProxyOptions {
  /** The validated config; only `proxy` is read (`Config` satisfies this). */
  readonly config: { readonly proxy: ProxyConfig }
  /** `UpstreamTable` (a worker's, or `primary.table` with `workers: 0`). */
  readonly upstreams: UpstreamLookup
  readonly planner: AttemptPlanner
  /** Null when no script runtime is wired. */
  readonly scripts: ScriptHost | null
  readonly accessLog: AccessLog
  readonly log: Logger
}

/** nginx stub_status figures (admin-api's `/y_nginx_status`). */
export interface ProxyStats {
  /** Open client connections. */
  readonly active: number
  /** Connections accepted since start. */
  readonly accepts: number
  /** Connections handled (every accepted one is handled). */
  readonly handled: number
  /** Requests received since start (upgrades included). */
  readonly requests: number
  /** Connections waiting for their first request head. */
  readonly reading: number
  /** Connections with a request in progress (upgraded ones included). */
  readonly writing: number
  /** Idle keep-alive connections between requests. */
  readonly waiting: number
}

const READING = 0
const WRITING = 1
const WAITING = 2
type ConnectionState = typeof READING | typeof WRITING | typeof WAITING

const kClient = Symbol('clientConnection')
interface ClientConnection {
  readonly proxy: HttpProxy
  state: ConnectionState
  /** Exchanges started on this connection and not yet ended (pipelining can make it more than one). */
  inFlight: number
}
type TrackedSocket = Socket & { [kClient]?: ClientConnection }

export class HttpProxy {
  /** Plain numbers for tests and /metrics. */
  readonly counters: ProxyCounters = createProxyCounters()
  #settings: ProxySettings
  readonly #log: Logger
  #accessLog: AccessLog
  readonly #pools: UpstreamPools
  readonly #context: ExchangeContext
  readonly #upgrades: UpgradeProxy
  readonly #servers: Server[] = []
  readonly #sockets = new Set<TrackedSocket>()
  readonly #exchanges = new Set<Exchange>()
  readonly #stateCounts = [0, 0, 0]
  #accepts = 0
  #requests = 0
  #isDraining = false
  #onIdle: (() => void) | null = null
  #shutdown: Promise<{ readonly cut: number }> | null = null

  constructor(options: HttpProxyOptions) {
    this.#settings = buildProxySettings(options.config.proxy)
    this.#log = options.log
    this.#accessLog = options.accessLog
    this.#pools = new UpstreamPools({ upstreamIdleTimeoutMs: this.#settings.upstreamIdleTimeoutMs })
    const proxy = this
    this.#context = {
      settings: this.#settings,
      upstreams: options.upstreams,
      planner: options.planner,
      scripts: options.scripts,
      pools: this.#pools,
      accessLog: options.accessLog,
      log: options.log,
      counters: this.counters,
      get isDraining() {
        return proxy.#isDraining
      },
      exchangeEnded: (exchange) => this.#exchangeEnded(exchange),
    }
    this.#upgrades = new UpgradeProxy(this.#context, () => this.#checkIdle())
  }

  /** Binds every `proxy.listen` address; resolves with the bound addresses (a port 0 becomes the real port). */
  async listen(): Promise<readonly { readonly host: string; readonly port: number }[]> {
    const bound: { host: string; port: number }[] = []
    for (const address of this.#settings.listen) {
      const server = this.#createServer()
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error): void => reject(new ProxyListenError(address.host, address.port, error))
        server.once('error', onError)
        server.listen(address.port, address.host, () => {
          server.off('error', onError)
          resolve()
        })
      })
      this.#servers.push(server)
      const info = server.address() as AddressInfo
      bound.push({ host: address.host, port: info.port })
    }
    return bound
  }

  stats(): ProxyStats {
    const counts = this.#stateCounts
    return {
      active: this.#sockets.size,
      accepts: this.#accepts,
      handled: this.#accepts,
      requests: this.#requests,
      reading: counts[READING]!,
      writing: counts[WRITING]!,
      waiting: counts[WAITING]!,
    }
  }

  /** Servers that left their upstream (`ApplyReport.removed`): their idle upstream sockets close at once, their
   *  upgraded connections drain until `proxy.drain_timeout` (proxy.md §3, §7). In-flight requests finish. */
  closeServers(removed: readonly PeerRef[]): void {
    for (const ref of removed) this.#pools.closeServer(ref.peer)
    this.#upgrades.drainServers(removed, this.#settings.drainTimeoutMs)
  }

  /** Servers new to their upstream (`ApplyReport.added`): upgraded connections draining because that server had
   *  left stop draining. */
  keepServers(added: readonly PeerRef[]): void {
    this.#upgrades.keepServers(added)
  }

  /** SIGHUP reload (proxy.md §10): the `proxy` options, the planner (`next_upstream`) and the access log apply to every
   *  request that starts from now on; open listeners take the new head limits and client timeouts for the
   *  connections they accept next. `listen` is not re-read: listeners change by rolling the workers. The caller
   *  closes the access log it replaced. */
  reconfigure(options: Pick<HttpProxyOptions, 'config' | 'planner' | 'accessLog'>): void {
    const settings = Object.freeze({ ...buildProxySettings(options.config.proxy), listen: this.#settings.listen })
    this.#settings = settings
    this.#accessLog = options.accessLog
    this.#context.settings = settings
    this.#context.planner = options.planner
    this.#context.accessLog = options.accessLog
    this.#pools.setIdleTimeout(settings.upstreamIdleTimeoutMs)
    for (const server of this.#servers) {
      // Node reads this property for each new connection; @types/node does not declare it.
      ;(server as Server & { maxHeaderSize: number }).maxHeaderSize = settings.maxHeaderBytes
      server.keepAliveTimeout = settings.clientKeepaliveTimeoutMs
      server.headersTimeout = settings.clientHeaderTimeoutMs
    }
  }

  /** SIGUSR1: reopen the access log file after rotation. */
  reopenAccessLog(): void {
    this.#accessLog.reopen()
  }

  /** Idle upstream sockets per server id (tests, diagnostics). */
  idleUpstreamSockets(): ReadonlyMap<string, number> {
    return this.#pools.idleCounts()
  }

  /** proxy.md §10 steps 2–5: stop accepting, close idle keep-alive connections, let in-flight requests finish with
   *  `Connection: close` and upgraded connections drain; at the deadline close whatever is left. Resolves with the
   *  number of connections cut (logged as a WARN when not 0). A second call returns the first call's promise. */
  shutdown(drainTimeoutMs: number): Promise<{ readonly cut: number }> {
    this.#shutdown ??= this.#drain(drainTimeoutMs)
    return this.#shutdown
  }

  async #drain(drainTimeoutMs: number): Promise<{ readonly cut: number }> {
    this.#isDraining = true
    const closed = this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))
    for (const server of this.#servers) server.closeIdleConnections()
    this.#closeIdleClients()
    this.#upgrades.drainAll(drainTimeoutMs)

    let cut = 0
    if (!this.#isIdle) {
      let timer: NodeJS.Timeout | null = null
      const isDrained = await new Promise<boolean>((resolve) => {
        this.#onIdle = () => resolve(true)
        timer = setTimeout(() => resolve(false), drainTimeoutMs)
      })
      this.#onIdle = null
      if (timer !== null) clearTimeout(timer)
      if (!isDrained) {
        cut = this.#exchanges.size + this.#upgrades.cutAll()
        for (const exchange of [...this.#exchanges]) exchange.cut()
      }
    }
    for (const socket of this.#sockets) socket.destroy()
    this.#pools.closeAll()
    await Promise.all(closed)
    if (cut > 0) {
      this.#log.warn({ cut, drain_timeout_ms: drainTimeoutMs }, `shutdown cut ${cut} connection(s) still open at the drain deadline`)
    }
    return { cut }
  }

  // ---------------------------------------------------------------------------------------------------------------

  #createServer(): Server {
    const settings = this.#settings
    const server = createServer({
      maxHeaderSize: settings.maxHeaderBytes,
      // Missing Host gets the proxy's own JSON 400 (exchange.ts), not Node's bare one.
      requireHostHeader: false,
      keepAliveTimeout: settings.clientKeepaliveTimeoutMs,
      headersTimeout: settings.clientHeaderTimeoutMs,
      // Bodies are bounded by client_body_timeout between reads, not by a total.
      requestTimeout: 0,
      // Node checks header deadlines on this interval; keep it well under the timeout so 408 comes on time.
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(settings.clientHeaderTimeoutMs / 4))),
      noDelay: true,
    })
    server.on('connection', (socket: Socket) => this.#accepted(socket))
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#request(req, res, false))
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.#request(req, res, true))
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(req, socket, head))
    server.on('clientError', (error: Error & { code?: string }, socket: Socket) => this.#clientError(error, socket))
    return server
  }

  #accepted(socket: TrackedSocket): void {
    this.#accepts += 1
    this.#sockets.add(socket)
    socket[kClient] = { proxy: this, state: READING, inFlight: 0 }
    this.#stateCounts[READING]! += 1
    socket.once('close', onClientSocketClose)
  }

  socketClosed(socket: TrackedSocket): void {
    this.#sockets.delete(socket)
    const connection = socket[kClient]
    if (connection !== undefined) this.#stateCounts[connection.state]! -= 1
    this.#checkIdle()
  }

  #setState(connection: ClientConnection, state: ConnectionState): void {
    this.#stateCounts[connection.state]! -= 1
    connection.state = state
    this.#stateCounts[state]! += 1
  }

  #request(req: IncomingMessage, res: ServerResponse, needsContinue: boolean): void {
    this.#requests += 1
    const connection = (req.socket as TrackedSocket)[kClient]
    if (connection !== undefined) {
      connection.inFlight += 1
      if (connection.state !== WRITING) this.#setState(connection, WRITING)
    }
    const exchange = new Exchange(this.#context, req, res, needsContinue)
    this.#exchanges.add(exchange)
    exchange.start()
  }

  #exchangeEnded(exchange: Exchange): void {
    this.#exchanges.delete(exchange)
    const socket = exchange.req.socket as TrackedSocket
    const connection = socket[kClient]
    if (connection !== undefined) {
      connection.inFlight -= 1
      if (connection.inFlight === 0 && !socket.destroyed && connection.state === WRITING) this.#setState(connection, WAITING)
    }
    // Draining: a response whose head went out with keep-alive leaves an idle connection behind; close it.
    if (this.#isDraining && connection !== undefined && connection.inFlight === 0) socket.end()
    this.#checkIdle()
  }

  #upgrade(req: IncomingMessage, socket: TrackedSocket, head: Buffer): void {
    this.#requests += 1
    const connection = socket[kClient]
    if (connection !== undefined && connection.state !== WRITING) this.#setState(connection, WRITING)
    if (this.#isDraining) {
      socket.destroy()
      return
    }
    this.#upgrades.handle(req, socket, head)
  }

  /** The parser refused the request (§2.1) or its head was too slow (§5): answer in §6 format and close. */
  #clientError(error: Error & { code?: string }, socket: Socket): void {
    const answer = answerFor(error.code)
    // A reset, or a response already under way on this connection: nothing sensible can be written any more.
    if (answer === null || (socket as Socket & { _httpMessage?: unknown })._httpMessage != null) {
      socket.destroy()
      return
    }
    const requestId = newRequestId()
    const headers = errorHeadersOf(answer, requestId, this.#settings.hasServerHeader)
    endWithResponse(socket, buildRawResponse(answer.status, headers, answer.body, false))
    countResponse(this.counters.upstreams[NO_UPSTREAM_LABEL]!, answer.status)
    if (this.#accessLog.isEnabled) this.#accessLog.write(refusedRecord(socket, answer, requestId))
  }

  #closeIdleClients(): void {
    for (const socket of this.#sockets) {
      const connection = socket[kClient]
      if (connection !== undefined && connection.inFlight === 0 && connection.state !== WRITING) socket.destroy()
    }
  }

  get #isIdle(): boolean {
    return this.#exchanges.size === 0 && this.#upgrades.size === 0
  }

  #checkIdle(): void {
    if (this.#onIdle !== null && this.#isIdle) this.#onIdle()
  }
}

function onClientSocketClose(this: TrackedSocket): void {
  this[kClient]?.proxy.socketClosed(this)
}

function answerFor(code: string | undefined): GeneratedError | null {
  switch (code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return null
    case 'HPE_HEADER_OVERFLOW':
      return HEADER_TOO_LARGE
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return REQUEST_TIMEOUT
    default:
      return BAD_REQUEST
  }
}

/** The access-log line of a request the parser refused: what is known of it, "-" and -1 for the rest (§8). */
function refusedRecord(socket: Socket, answer: GeneratedError, requestId: string): HttpAccessRecord {
  return {
    time: isoTimeNow(),
    remote_addr: clientAddressOf(socket.remoteAddress) || '-',
    method: '-',
    scheme: 'http',
    host: '-',
    request_uri: '-',
    protocol: '-',
    status: answer.status,
    body_bytes_sent: answer.body.length,
    referer: '-',
    user_agent: '-',
    x_forwarded_for: '-',
    upstream: '-',
    upstream_addr: '-',
    upstream_status: '-',
    upstream_response_time: '-',
    request_time: -1,
    x_error_code: answer.code,
    request_id: requestId,
  }
}

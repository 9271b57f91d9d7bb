/** WebSocket upgrades (proxy.md §7): the same checks, routing, scripts and upstream lookup as a plain request, then
 *  connect attempts with retries on other servers (each bounded by the upstream's connect_timeout), then http-proxy's
 *  `ws` support forwards the handshake on the connected socket and pipes both ways with backpressure. Owns the live
 *  upgraded connections: `upgrade_idle_timeout`, the drain when their server leaves or on shutdown, and their access
 *  log line when they close (status 101, bytes both ways, lifetime). Config changes never touch them.
 *
 *  The connect happens here rather than inside http-proxy because http-proxy ends the client socket on any outgoing
 *  error, which would make a retry on another server impossible; it gets the connected socket through an agent. */
import { Agent } from 'node:http'
import type { ClientRequest, IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import httpProxy from 'http-proxy'
import type { AttemptPlan, Peer, PeerRef, PlanRequest, Upstream } from '../checkups/index.js'
import type { RequestDecision, ScriptFailure, ScriptRun } from '../scripts/index.js'
import { isoTimeNow, secondsText, secondsValue } from './access-record.js'
import type { HttpAccessRecord } from './access-record.js'
import { classifyFailure } from './attempt.js'
import type { FailureClass } from './attempt.js'
import { countResponse, countRetry, NO_UPSTREAM_LABEL, upstreamCountersOf } from './counters.js'
import {
  BAD_REQUEST, errorHeadersOf, INTERNAL_ERROR, NO_SERVERS, NO_UPSTREAM, SCRIPT_ERROR, SCRIPT_TIMEOUT,
} from './errors.js'
import type { GeneratedError } from './errors.js'
import type { ExchangeContext } from './exchange.js'
import { buildRawResponse, endWithResponse } from './raw-response.js'
import { readRequestHead, withHeaderChanges } from './request-headers.js'
import type { RequestHead } from './request-headers.js'
import { scriptAnswerHeadersOf } from './response-headers.js'
import { absoluteFormAuthority, clientAddressOf, isValidHostValue, originFormOf, routingHostOf } from './routing.js'
import { scriptRequestOf } from './script-request.js'

export type UpgradeContext = Omit<ExchangeContext, 'pools' | 'exchangeEnded'>

const kUpgrade = Symbol('upgrade')
type Tagged<T> = T & { [kUpgrade]?: UpgradedConnection }
const EMPTY_BODY = Buffer.alloc(0)

/** One upgrade request and, once the server answered 101, the tunnel it became. */
class UpgradedConnection implements PlanRequest {
  readonly owner: UpgradeProxy
  readonly req: IncomingMessage
  readonly socket: Socket
  readonly head: Buffer
  readonly method: string
  readonly target: string
  readonly remoteAddress: string
  /** Node's lower-cased headers as received (the hash key source); captured before the outgoing set replaces them. */
  readonly headers: IncomingMessage['headers']
  readonly startMs = performance.now()
  requestHead: RequestHead | null = null
  routingHost = ''
  upstreamTarget = ''
  upstream: Upstream | null = null
  plan: AttemptPlan | null = null
  peer: Peer | null = null
  upstreamSocket: Socket | null = null
  isHandedOff = false
  run: ScriptRun | null = null
  /** Status sent to the client: 101, the server's other status, or a generated one; 0 while none. */
  status = 0
  isOpen = false
  isClosed = false
  isScriptClose = false
  xErrorCode = -1
  drainTimer: NodeJS.Timeout | null = null
  tryStartMs = 0
  upstreamAddr = ''
  upstreamStatus = ''
  upstreamTimes = ''

  constructor(owner: UpgradeProxy, req: IncomingMessage, socket: Socket, head: Buffer) {
    this.owner = owner
    this.req = req
    this.socket = socket
    this.head = head
    this.method = req.method ?? 'GET'
    this.target = req.url ?? '/'
    this.remoteAddress = clientAddressOf(socket.remoteAddress)
    this.headers = req.headers
  }

  get requestId(): string {
    return this.requestHead?.requestId ?? '-'
  }

  get isDraining(): boolean {
    return this.drainTimer !== null
  }

  recordTry(status: string): void {
    this.upstreamStatus = this.upstreamStatus === '' ? status : `${this.upstreamStatus}, ${status}`
    const seconds = secondsText(performance.now() - this.tryStartMs)
    this.upstreamTimes = this.upstreamTimes === '' ? seconds : `${this.upstreamTimes}, ${seconds}`
  }
}

/** Hands http-proxy the socket this module already connected. */
class ConnectedSocketAgent extends Agent {
  readonly #socket: Socket
  constructor(socket: Socket) {
    super({ keepAlive: false })
    this.#socket = socket
  }
  override createConnection(): Socket {
    return this.#socket
  }
}

export class UpgradeProxy {
  readonly #ctx: UpgradeContext
  readonly #onEnded: () => void
  readonly #proxy = httpProxy.createProxyServer({ ws: true, toProxy: true, prependPath: false, xfwd: false })
  readonly #live = new Set<UpgradedConnection>()
  #isShuttingDown = false

  constructor(ctx: UpgradeContext, onEnded: () => void) {
    this.#ctx = ctx
    this.#onEnded = onEnded
    // One handler each for the life of the process; the connection is found on the request (style.md, Hot path).
    this.#proxy.on('proxyReqWs', (proxyReq: ClientRequest, req: IncomingMessage) => {
      const conn = (req as Tagged<IncomingMessage>)[kUpgrade]
      if (conn === undefined) return
      ;(proxyReq as Tagged<ClientRequest>)[kUpgrade] = conn
      proxyReq.once('response', onServerResponse)
      proxyReq.once('upgrade', onServerUpgrade)
    })
    this.#proxy.on('error', (error: Error, req: IncomingMessage) => {
      const conn = (req as Tagged<IncomingMessage>)[kUpgrade]
      if (conn !== undefined) this.#failAfterHandoff(conn, error)
    })
  }

  /** Upgraded (or still upgrading) connections open now. */
  get size(): number {
    return this.#live.size
  }

  handle(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', ignore)
    const conn = new UpgradedConnection(this, req, socket, head)
    ;(req as Tagged<IncomingMessage>)[kUpgrade] = conn
    ;(socket as Tagged<Socket>)[kUpgrade] = conn
    this.#live.add(conn)
    socket.once('close', () => this.#closed(conn))
    try {
      this.#begin(conn)
    } catch (error) {
      this.#ctx.log.error({ request_id: conn.requestId, err: error }, 'unexpected proxy fault in an upgrade')
      this.#answerError(conn, INTERNAL_ERROR)
    }
  }

  /** A server left its upstream: its upgraded connections may run until `drainTimeoutMs`, then they are closed. */
  drainServers(removed: readonly PeerRef[], drainTimeoutMs: number): void {
    if (removed.length === 0 || this.#live.size === 0) return
    const keys = new Set(removed.map((ref) => `${ref.upstream}\n${ref.peer}`))
    for (const conn of this.#live) {
      if (conn.peer !== null && keys.has(`${conn.upstream!.name}\n${conn.peer.id}`)) this.#drain(conn, drainTimeoutMs)
    }
  }

  /** Servers (re)added to their upstream: their connections that were draining because the server had left go on
   *  as if it never had (a remove and re-add in two KV writes must not cut them). Shutdown drains stay. */
  keepServers(added: readonly PeerRef[]): void {
    if (added.length === 0 || this.#isShuttingDown) return
    const keys = new Set(added.map((ref) => `${ref.upstream}\n${ref.peer}`))
    for (const conn of this.#live) {
      if (conn.drainTimer === null || conn.peer === null || !keys.has(`${conn.upstream!.name}\n${conn.peer.id}`)) continue
      clearTimeout(conn.drainTimer)
      conn.drainTimer = null
      this.#ctx.counters.draining -= 1
    }
  }

  drainAll(drainTimeoutMs: number): void {
    this.#isShuttingDown = true
    for (const conn of this.#live) this.#drain(conn, drainTimeoutMs)
  }

  /** Closes every connection now; returns how many there were. */
  cutAll(): number {
    const count = this.#live.size
    for (const conn of [...this.#live]) cut(conn)
    return count
  }

  // ---------------------------------------------------------------------------------------------------------------

  #begin(conn: UpgradedConnection): void {
    const ctx = this.#ctx
    const head = readRequestHead(conn.req.rawHeaders, ctx.settings, conn.remoteAddress)
    conn.requestHead = head
    const authority = absoluteFormAuthority(conn.target)
    const isHostValid = head.hostCount === 1 && isValidHostValue(head.host!) && (authority === null || isValidHostValue(authority))
    // http-proxy forwards WebSocket upgrades only; other protocols are refused rather than silently downgraded.
    const upgrade = conn.headers.upgrade
    if (!isHostValid || conn.method !== 'GET' || upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
      return this.#answerError(conn, BAD_REQUEST)
    }
    // Upgrade is hop-by-hop, except on upgrade requests (§4).
    head.headers.push('Connection', 'Upgrade', 'Upgrade', upgrade)
    conn.routingHost = routingHostOf(authority ?? head.host!)
    conn.upstreamTarget = originFormOf(conn.target)

    const hostScripts = ctx.scripts === null ? null : ctx.scripts.forHost(conn.routingHost)
    if (hostScripts === null) return this.#route(conn, conn.routingHost)
    const run = hostScripts.begin(scriptRequestOf(conn.req, {
      method: conn.method,
      target: conn.upstreamTarget,
      routingHost: conn.routingHost,
      remoteAddress: conn.remoteAddress,
      requestId: head.requestId,
      startMs: conn.startMs,
      readBody: () => Promise.resolve(EMPTY_BODY),
    }))
    conn.run = run
    const decision = run.onRequest()
    if (typeof (decision as Promise<RequestDecision>).then === 'function') {
      ;(decision as Promise<RequestDecision>).then(
        (value) => this.#applyDecision(conn, value),
        (error: unknown) => {
          this.#ctx.log.error({ request_id: conn.requestId, err: error }, 'script host threw instead of returning a failure')
          this.#answerError(conn, SCRIPT_ERROR)
        },
      )
    } else {
      this.#applyDecision(conn, decision as RequestDecision)
    }
  }

  #applyDecision(conn: UpgradedConnection, decision: RequestDecision): void {
    if (conn.isClosed) return
    if (decision.kind === 'error') return this.#scriptFailed(conn, decision)
    if (decision.xErrorCode !== null) conn.xErrorCode = decision.xErrorCode
    switch (decision.kind) {
      case 'continue': {
        const changes = decision.changes
        if (changes.target !== null) conn.upstreamTarget = changes.target
        const head = conn.requestHead!
        if (changes.requestHeaders !== null) head.headers = withHeaderChanges(head.headers, changes.requestHeaders)
        return this.#route(conn, decision.upstream ?? conn.routingHost)
      }
      case 'respond': {
        const headers = scriptAnswerHeadersOf(decision.headers, this.#ctx.settings, conn.requestId)
        conn.status = decision.status
        endWithResponse(conn.socket, buildRawResponse(decision.status, headers, decision.body, false))
        return
      }
      case 'close':
        conn.isScriptClose = true
        conn.socket.destroy()
        return
    }
  }

  #scriptFailed(conn: UpgradedConnection, failure: ScriptFailure): void {
    this.#ctx.log.error({
      request_id: conn.requestId,
      host: conn.routingHost,
      script: failure.script,
      runtime: failure.runtime,
      version: failure.version,
      err: { message: failure.message, stack: failure.stack },
    }, `script ${failure.runtime}/${failure.script} failed: ${failure.message}`)
    this.#answerError(conn, failure.xErrorCode === 50000002 ? SCRIPT_TIMEOUT : SCRIPT_ERROR)
  }

  #route(conn: UpgradedConnection, name: string): void {
    const ctx = this.#ctx
    let upstream = ctx.upstreams.get(name)
    const fallback = ctx.settings.defaultUpstream
    if (upstream === undefined && fallback !== null) upstream = ctx.upstreams.get(fallback)
    if (upstream === undefined) return this.#answerError(conn, NO_UPSTREAM)
    conn.upstream = upstream
    const plan = ctx.planner.begin(upstream, conn)
    conn.plan = plan
    const peer = plan.first()
    if (peer === null) return this.#answerError(conn, NO_SERVERS)
    this.#connect(conn, peer)
  }

  /** One connect attempt; failures before the server answered are retried like HTTP tries (§7). */
  #connect(conn: UpgradedConnection, peer: Peer): void {
    if (conn.isClosed) return
    conn.peer = peer
    conn.tryStartMs = performance.now()
    conn.upstreamAddr = conn.upstreamAddr === '' ? peer.id : `${conn.upstreamAddr}, ${peer.id}`
    if (peer.address === null) return this.#connectFailed(conn, UNRESOLVED)
    const socket = connect({ host: peer.address, port: peer.port, noDelay: true })
    conn.upstreamSocket = socket
    ;(socket as Tagged<Socket>)[kUpgrade] = conn
    socket.setTimeout(conn.upstream!.connectTimeoutMs)
    socket.once('timeout', onConnectTimeout)
    socket.on('error', (error: Error) => {
      if (conn.upstreamSocket !== socket || conn.isHandedOff) return
      this.#connectFailed(conn, classifyFailure(error))
    })
    socket.once('connect', () => {
      if (conn.upstreamSocket !== socket) return
      socket.setTimeout(0)
      socket.off('timeout', onConnectTimeout)
      this.#handOff(conn, socket)
    })
  }

  #connectFailed(conn: UpgradedConnection, failure: FailureClass): void {
    conn.upstreamSocket?.destroy()
    conn.upstreamSocket = null
    conn.recordTry('-')
    if (conn.isClosed) return
    const plan = conn.plan!
    const next = plan.settle({ outcome: failure.outcome, phase: 'connect', requestBytesWritten: false, bodyReplayable: true })
    if (next !== null) {
      countRetry(upstreamCountersOf(this.#ctx.counters, conn.upstream!.name), plan.lastClass)
      return this.#connect(conn, next)
    }
    this.#answerError(conn, failure.answer)
  }

  #handOff(conn: UpgradedConnection, upstreamSocket: Socket): void {
    if (conn.isClosed) {
      upstreamSocket.destroy()
      return
    }
    conn.isHandedOff = true
    const req = conn.req
    // http-proxy sends `req.headers` and `req.url`: give it the §4 header set (script changes included).
    req.headers = headerObjectOf(conn.requestHead!.headers)
    req.url = conn.upstreamTarget
    const peer = conn.peer!
    const host = peer.address!.includes(':') ? `[${peer.address}]` : peer.address!
    this.#proxy.ws(req, conn.socket, conn.head, {
      target: `http://${host}:${peer.port}`,
      agent: new ConnectedSocketAgent(upstreamSocket),
    })
    // http-proxy cleared the client socket's timeout; the idle limit covers both directions, since every byte
    // passes through this socket (§7, `upgrade_idle_timeout`; 0 = never).
    const idleMs = this.#ctx.settings.upgradeIdleTimeoutMs
    if (idleMs > 0) {
      conn.socket.setTimeout(idleMs)
      conn.socket.once('timeout', onIdleTimeout)
    }
  }

  /** The server failed after the request went out: no retry (§7). Before it answered, the client gets 502/504. */
  #failAfterHandoff(conn: UpgradedConnection, error: Error): void {
    if (conn.status !== 0) return
    const failure = classifyFailure(error)
    conn.recordTry('-')
    conn.plan?.lateFailure()
    this.#answerError(conn, failure.answer)
  }

  /** The server's answer to the handshake (from the shared listeners below). */
  serverAnswered(conn: UpgradedConnection, status: number): void {
    conn.status = status
    conn.recordTry(String(status))
    // Feedback only: after the server answered nothing is retried (§7), whatever the plan would pick next.
    conn.plan?.settle({ outcome: 'response', status, bodyReplayable: false })
    if (status === 101) {
      conn.isOpen = true
      this.#ctx.counters.upgradesActive += 1
    }
  }

  #answerError(conn: UpgradedConnection, error: GeneratedError): void {
    if (conn.isClosed) return
    conn.status = error.status
    conn.xErrorCode = error.code
    const headers = errorHeadersOf(error, conn.requestId, this.#ctx.settings.hasServerHeader)
    endWithResponse(conn.socket, buildRawResponse(error.status, headers, error.body, false))
  }

  #drain(conn: UpgradedConnection, drainTimeoutMs: number): void {
    if (conn.isDraining || conn.isClosed) return
    this.#ctx.counters.draining += 1
    conn.drainTimer = setTimeout(cut, drainTimeoutMs, conn)
    conn.drainTimer.unref()
  }

  #closed(conn: UpgradedConnection): void {
    if (conn.isClosed) return
    conn.isClosed = true
    this.#live.delete(conn)
    conn.upstreamSocket?.destroy()
    const ctx = this.#ctx
    if (conn.drainTimer !== null) {
      clearTimeout(conn.drainTimer)
      ctx.counters.draining -= 1
    }
    if (conn.isOpen) ctx.counters.upgradesActive -= 1
    const status = conn.isScriptClose ? 444 : conn.status === 0 ? 499 : conn.status
    countResponse(upstreamCountersOf(ctx.counters, conn.upstream?.name ?? NO_UPSTREAM_LABEL), status)
    const run = conn.run
    const wantsLog = run !== null && run.wantsLog
    if (ctx.accessLog.isEnabled || wantsLog) {
      const record = accessRecordOf(conn, status)
      if (ctx.accessLog.isEnabled) ctx.accessLog.write(record)
      if (wantsLog) {
        try {
          run.onLog(Object.freeze({ ...record }))
        } catch (error) {
          ctx.log.error({ request_id: conn.requestId, err: error }, 'script onLog threw')
        }
      }
    }
    this.#onEnded()
  }
}

const UNRESOLVED = classifyFailure(Object.assign(new Error('unresolved'), { code: 'EAI_AGAIN' }))

function ignore(): void {}

function cut(conn: UpgradedConnection): void {
  conn.upstreamSocket?.destroy()
  conn.socket.destroy()
}

function onConnectTimeout(this: Tagged<Socket>): void {
  this.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }))
}

function onIdleTimeout(this: Tagged<Socket>): void {
  const conn = this[kUpgrade]
  if (conn !== undefined) cut(conn)
  else this.destroy()
}

function onServerResponse(this: Tagged<ClientRequest>, res: IncomingMessage): void {
  const conn = this[kUpgrade]
  // A 101 arrives as 'upgrade'; any other status is forwarded by http-proxy as a normal response, then closed.
  if (conn !== undefined && res.statusCode !== 101) conn.owner.serverAnswered(conn, res.statusCode ?? 502)
}

function onServerUpgrade(this: Tagged<ClientRequest>): void {
  const conn = this[kUpgrade]
  if (conn !== undefined) conn.owner.serverAnswered(conn, 101)
}

/** Flat `[name, value, …]` → the header object http-proxy copies and checks (`req.headers.upgrade`), so names are
 *  lower-cased as Node presents them; values stay as received. Repeated names become arrays. */
function headerObjectOf(flat: readonly string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {}
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase()
    const previous = headers[name]
    const value = flat[i + 1]!
    if (previous === undefined) headers[name] = value
    else if (Array.isArray(previous)) previous.push(value)
    else headers[name] = [previous, value]
  }
  return headers
}

function accessRecordOf(conn: UpgradedConnection, status: number): HttpAccessRecord & { bytes_in: number; bytes_out: number } {
  const head = conn.requestHead
  const bytesOut = conn.socket.bytesWritten
  return {
    time: isoTimeNow(),
    remote_addr: conn.remoteAddress || '-',
    method: conn.method,
    scheme: 'http',
    host: conn.routingHost || '-',
    request_uri: conn.target,
    protocol: `HTTP/${conn.req.httpVersion}`,
    status,
    body_bytes_sent: bytesOut,
    referer: head?.referer ?? '-',
    user_agent: head?.userAgent ?? '-',
    x_forwarded_for: head?.xForwardedFor ?? '-',
    upstream: conn.upstream?.name ?? '-',
    upstream_addr: conn.upstreamAddr || '-',
    upstream_status: conn.upstreamStatus || '-',
    upstream_response_time: conn.upstreamTimes || '-',
    request_time: secondsValue(performance.now() - conn.startMs),
    x_error_code: conn.xErrorCode,
    request_id: head?.requestId ?? '-',
    bytes_in: conn.socket.bytesRead,
    bytes_out: bytesOut,
  }
}

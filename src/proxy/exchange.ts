/** One HTTP request from arrival to its access-log line (proxy.md §2 steps 1–7): request checks, routing host,
 *  per-host scripts, upstream lookup, the attempt loop driven by the checkups plan (retries, the stale keep-alive
 *  replay, passive feedback), response streaming with backpressure both ways, generated error responses (§6), client
 *  aborts and the log. Owns the state of one request; leaves header rules, body reading, pooling and attempt
 *  bookkeeping to their modules, and listeners, connections and shutdown to server.ts.
 *
 *  Hot path (no script, no body): one `forHost` call, one upstream Map lookup, one plan, one header pass each way,
 *  one dispatch; no closures (listeners are module functions that find the exchange on the response object). */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AttemptPlan, AttemptPlanner, Peer, PlanRequest, Upstream } from '../checkups/index.js'
import type { AccessLog, Logger } from '../log.js'
import type { HeaderChange, RequestDecision, ScriptFailure, ScriptHost, ScriptResponse, ScriptRun } from '../scripts/index.js'
import { httpAccessLine, isoTimeNow, secondsText, secondsValue } from './access-record.js'
import type { HttpAccessRecord } from './access-record.js'
import { Attempt, classifyFailure, UpstreamSendTimeoutError } from './attempt.js'
import type { AttemptOwner, FailureClass } from './attempt.js'
import { countResponse, countRetry, NO_UPSTREAM_LABEL, observeSeconds, RESPONSE_SECONDS_BUCKETS, upstreamCountersOf } from './counters.js'
import type { ProxyCounters, UpstreamCounters } from './counters.js'
import {
  BAD_REQUEST, BODY_TOO_LARGE, errorHeadersOf, INTERNAL_ERROR, INVALID_RESPONSE, NO_SERVERS, NO_UPSTREAM, REQUEST_TIMEOUT,
  SCRIPT_ERROR, SCRIPT_TIMEOUT,
} from './errors.js'
import type { GeneratedError } from './errors.js'
import type { ProxySettings } from './options.js'
import { RequestBody } from './request-body.js'
import type { BodyFailure, BodyOwner } from './request-body.js'
import { readRequestHead, withHeaderChanges } from './request-headers.js'
import type { RequestHead } from './request-headers.js'
import {
  clientHeadersOf, headersOfScriptResponse, scriptAnswerHeadersOf, scriptResponseOf, withResponseChanges,
} from './response-headers.js'
import { scriptRequestOf } from './script-request.js'
import { absoluteFormAuthority, clientAddressOf, isChunkedLast, isValidHostValue, originFormOf, routingHostOf } from './routing.js'
import type { UpstreamPools } from './upstream-pool.js'

/** What the proxy needs from the upstream table: `UpstreamTable` satisfies it. */
export interface UpstreamLookup {
  get(name: string): Upstream | undefined
}

/** Shared by every exchange of one HttpProxy. */
export interface ExchangeContext {
  /** settings, planner and accessLog are replaced whole by a SIGHUP reload (HttpProxy.reconfigure); read them from
   *  here each time rather than keeping a copy. */
  settings: ProxySettings
  readonly upstreams: UpstreamLookup
  planner: AttemptPlanner
  readonly scripts: ScriptHost | null
  readonly pools: UpstreamPools
  accessLog: AccessLog
  readonly log: Logger
  readonly counters: ProxyCounters
  /** Shutdown has begun: every response closes its connection (proxy.md §10 step 3). */
  readonly isDraining: boolean
  exchangeEnded(exchange: Exchange): void
}

type Ending = 'normal' | 'client_abort' | 'script_close' | 'cut_after_head'

const kExchange = Symbol('exchange')
type TrackedResponse = ServerResponse & { [kExchange]?: Exchange }
const EMPTY_BODY = Buffer.alloc(0)

export class Exchange implements AttemptOwner, BodyOwner, PlanRequest {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly method: string
  /** Request-target as received (the hash key's source; the log's `request_uri`). */
  readonly target: string
  /** Client address, IPv4-mapped IPv6 unwrapped. */
  readonly remoteAddress: string
  readonly #ctx: ExchangeContext
  readonly #startMs = performance.now()
  readonly #needsContinue: boolean
  #head: RequestHead | null = null
  #routingHost = ''
  #upstreamTarget = ''
  #upstream: Upstream | null = null
  /** The counters of `#upstream`, looked up once when it is chosen. */
  #counters: UpstreamCounters | null = null
  #plan: AttemptPlan | null = null
  #attempt: Attempt | null = null
  #hasBody = false
  #body: RequestBody | null = null
  #isBodyReady = false
  #isAwaitingBody = false
  #bodyWaiters: ((body: Buffer | null) => void)[] | null = null
  #run: ScriptRun | null = null
  #isScriptFailure = false
  #responseChanges: ReadonlyMap<string, HeaderChange> | null = null
  #status = 0
  #isHeadSent = false
  #isUpstreamComplete = false
  #isDone = false
  #ending: Ending = 'normal'
  #xErrorCode = -1
  #bodyBytesSent = 0
  #tryStartMs = 0
  #upstreamAddr = ''
  #upstreamStatus = ''
  #upstreamTimes = ''
  #hasDrainListener = false
  #clientSendTimer: NodeJS.Timeout | null = null

  constructor(ctx: ExchangeContext, req: IncomingMessage, res: ServerResponse, needsContinue: boolean) {
    this.#ctx = ctx
    this.req = req
    this.res = res
    this.method = req.method ?? 'GET'
    this.target = req.url ?? '/'
    this.remoteAddress = clientAddressOf(req.socket.remoteAddress)
    this.#needsContinue = needsContinue
  }

  /** Lower-cased headers, built by Node on first use: only hash modes that read a header pay for it. */
  get headers(): IncomingMessage['headers'] {
    return this.req.headers
  }

  get requestId(): string {
    return this.#head?.requestId ?? ''
  }

  start(): void {
    ;(this.res as TrackedResponse)[kExchange] = this
    this.res.on('close', onResponseClose)
    try {
      this.#begin()
    } catch (error) {
      this.#internalError(error)
    }
  }

  /** Shutdown or a cut: stop whatever is running and close the client connection. */
  cut(): void {
    if (this.#isDone) return
    this.#ending = this.#isHeadSent ? 'cut_after_head' : 'client_abort'
    this.res.destroy()
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Steps 1–4: checks, routing host, scripts, upstream lookup.

  #begin(): void {
    const settings = this.#ctx.settings
    const head = readRequestHead(this.req.rawHeaders, settings, this.remoteAddress)
    this.#head = head
    if (!this.#isWellFormed(head)) return this.#sendError(BAD_REQUEST, true)
    const authority = absoluteFormAuthority(this.target)
    if (authority !== null && !isValidHostValue(authority)) return this.#sendError(BAD_REQUEST, true)
    this.#routingHost = routingHostOf(authority ?? head.host ?? '')
    this.#upstreamTarget = originFormOf(this.target)
    // `OPTIONS *` and other non-path targets have no place behind a Host-routed proxy (nginx refuses them too).
    if (this.#upstreamTarget.charCodeAt(0) !== 47 /* / */) return this.#sendError(BAD_REQUEST, false)
    if (head.contentLength !== null) {
      const length = Number(head.contentLength)
      if (length > settings.clientMaxBodyBytes) return this.#sendError(BODY_TOO_LARGE, true)
      this.#hasBody = length > 0
    } else {
      this.#hasBody = head.transferEncoding !== null
    }

    const scripts = this.#ctx.scripts
    const hostScripts = scripts === null ? null : scripts.forHost(this.#routingHost)
    if (hostScripts === null) return this.#route(this.#routingHost)
    const run = hostScripts.begin(scriptRequestOf(this.req, {
      method: this.method,
      target: this.#upstreamTarget,
      routingHost: this.#routingHost,
      remoteAddress: this.remoteAddress,
      requestId: head.requestId,
      startMs: this.#startMs,
      readBody: () => this.#readBodyForScript(),
    }))
    this.#run = run
    const decision = run.onRequest()
    if (isPromise(decision)) {
      decision.then(
        (value) => this.#guard(() => this.#applyDecision(value)),
        (error: unknown) => this.#guard(() => this.#scriptThrew(error)),
      )
    } else {
      this.#applyDecision(decision)
    }
  }

  /** §2.1: Host rules and body framing; Node's parser has already refused CL+TE and duplicate lengths. */
  #isWellFormed(head: RequestHead): boolean {
    if (head.hostCount > 1) return false
    if (head.host === null) {
      if (this.req.httpVersionMajor === 1 && this.req.httpVersionMinor >= 1) return false
    } else if (!isValidHostValue(head.host)) {
      return false
    }
    const te = head.transferEncoding
    if (te !== null && (head.contentLength !== null || !isChunkedLast(te))) return false
    return head.contentLengthCount <= 1
  }

  #applyDecision(decision: RequestDecision): void {
    if (this.#isDone) return
    if (decision.kind === 'error') return this.#scriptFailed(decision)
    if (decision.xErrorCode !== null) this.#xErrorCode = decision.xErrorCode
    switch (decision.kind) {
      case 'continue': {
        const changes = decision.changes
        if (changes.target !== null) this.#upstreamTarget = changes.target
        const head = this.#head!
        if (changes.requestHeaders !== null) head.headers = withHeaderChanges(head.headers, changes.requestHeaders)
        this.#responseChanges = changes.responseHeaders
        return this.#route(decision.upstream ?? this.#routingHost)
      }
      case 'respond':
        return this.#sendGenerated(
          decision.status, scriptAnswerHeadersOf(decision.headers, this.#ctx.settings, this.requestId), decision.body, false,
        )
      case 'close':
        this.#ending = 'script_close'
        this.#body?.stop()
        this.req.socket.destroy()
        return
    }
  }

  #route(name: string): void {
    if (this.#isDone) return
    const ctx = this.#ctx
    let upstream = ctx.upstreams.get(name)
    const fallback = ctx.settings.defaultUpstream
    if (upstream === undefined && fallback !== null) upstream = ctx.upstreams.get(fallback)
    if (upstream === undefined) return this.#sendError(NO_UPSTREAM, false)
    this.#upstream = upstream
    this.#counters = upstreamCountersOf(ctx.counters, upstream.name)
    if (this.#hasBody && !this.#isBodyReady) {
      this.#isAwaitingBody = true
      this.#startBody()
      return
    }
    this.#firstAttempt()
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Request body.

  #startBody(): void {
    if (this.#body !== null) return
    const settings = this.#ctx.settings
    this.#body = new RequestBody(this.req, this, settings)
    // nginx answers `Expect: 100-continue` when it starts reading the body, so a refused request never sees it.
    if (this.#needsContinue) this.res.writeContinue()
    this.#body.start()
  }

  onBodyReady(): void {
    this.#isBodyReady = true
    const waiters = this.#bodyWaiters
    if (waiters !== null) {
      this.#bodyWaiters = null
      const buffered = this.#body!.bufferedBody
      for (const resolve of waiters) resolve(buffered)
    }
    if (!this.#isAwaitingBody || this.#isDone) return
    this.#isAwaitingBody = false
    this.#guard(() => this.#firstAttempt())
  }

  onBodyFailure(failure: BodyFailure): void {
    if (this.#isDone) return
    const waiters = this.#bodyWaiters
    this.#bodyWaiters = null
    if (waiters !== null) for (const resolve of waiters) resolve(null)
    if (failure === 'send_timeout') {
      const attempt = this.#attempt
      if (attempt !== null) attempt.abort(new UpstreamSendTimeoutError(attempt.peer.id, this.#upstream!.sendTimeoutMs))
      return
    }
    this.#dropAttempt()
    if (this.#isHeadSent) {
      this.cut()
      return
    }
    this.#sendError(failure === 'too_large' ? BODY_TOO_LARGE : REQUEST_TIMEOUT, true)
  }

  get #isBodyReplayable(): boolean {
    return this.#body === null || this.#body.isReplayable
  }

  #readBodyForScript(): Promise<Buffer | null> {
    if (!this.#hasBody) return Promise.resolve(EMPTY_BODY)
    if (this.#isBodyReady) return Promise.resolve(this.#body!.bufferedBody)
    return new Promise((resolve) => {
      ;(this.#bodyWaiters ??= []).push(resolve)
      this.#startBody()
    })
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Step 5: attempts.

  #firstAttempt(): void {
    const plan = this.#ctx.planner.begin(this.#upstream!, this)
    this.#plan = plan
    const peer = plan.first()
    if (peer === null) return this.#sendError(NO_SERVERS, false)
    this.#startAttempt(peer, false)
  }

  #startAttempt(peer: Peer, isReplay: boolean): void {
    if (!isReplay) {
      this.#tryStartMs = performance.now()
      this.#upstreamAddr = this.#upstreamAddr === '' ? peer.id : `${this.#upstreamAddr}, ${peer.id}`
    }
    if (peer.address === null) {
      // An unresolved hostname fails its attempt at once with class `error` (upstreams.md §1.5).
      const log = this.#ctx.log
      if (log.isLevelEnabled('debug')) log.debug({ request_id: this.requestId, peer: peer.id }, peer.resolveError ?? 'unresolved')
      return this.#settleFailure(UNRESOLVED, false)
    }
    const upstream = this.#upstream!
    const connection = this.#ctx.pools.checkout(peer, upstream.connectTimeoutMs)
    const attempt = new Attempt(this, peer, connection, isReplay)
    this.#attempt = attempt
    const head = this.#head!
    const body = this.#body === null ? null : this.#body.bodyForAttempt(upstream.sendTimeoutMs)
    // A streamed body keeps its declared length; a buffered one gets undici's own Content-Length.
    const headers = body !== null && !Buffer.isBuffer(body) && head.contentLength !== null
      ? [...head.headers, 'Content-Length', head.contentLength]
      : head.headers
    connection.client.dispatch({
      path: this.#upstreamTarget,
      method: this.method as 'GET',
      headers,
      body,
      headersTimeout: upstream.readTimeoutMs,
      bodyTimeout: upstream.readTimeoutMs,
    }, attempt)
  }

  onAttemptHead(attempt: Attempt, status: number, rawHeaders: Buffer[]): boolean {
    if (attempt !== this.#attempt || this.#isDone) return false
    attempt.hasHead = true
    const plan = this.#plan!
    const next = plan.settle({ outcome: 'response', status, bodyReplayable: this.#isBodyReplayable })
    this.#recordTry(String(status), next !== null)
    if (next !== null) {
      this.#countRetry(plan)
      this.#dropAttempt()
      this.#startAttempt(next, false)
      return false
    }
    let headers = clientHeadersOf(rawHeaders, this.#ctx.settings, this.requestId)
    headers = withResponseChanges(headers, this.#responseChanges)
    const run = this.#run
    if (run !== null && run.wantsResponse) return this.#runOnProxiedResponse(run, attempt, status, headers)
    return this.#writeProxiedHead(status, headers)
  }

  onAttemptData(attempt: Attempt, chunk: Buffer): boolean {
    if (attempt !== this.#attempt) return false
    this.#bodyBytesSent += chunk.length
    if (this.res.write(chunk)) return true
    this.#waitForClient()
    return false
  }

  onAttemptComplete(attempt: Attempt): void {
    if (attempt !== this.#attempt) return
    this.#attempt = null
    this.#recordTime()
    this.#ctx.pools.checkin(attempt.connection, this.#upstream!.keepalive)
    this.#isUpstreamComplete = true
    // With a JS onResponse still running, the head is not out yet; it ends the response when it is.
    if (this.#isHeadSent) this.res.end()
  }

  onAttemptError(attempt: Attempt, error: Error): void {
    if (attempt !== this.#attempt) return
    this.#attempt = null
    this.#ctx.pools.discard(attempt.connection)
    if (this.#isDone) return
    const failure = classifyFailure(error)
    if (attempt.hasHead) {
      // Late failure (upstreams.md §3.1): the status may be out already; never retried, charged to the server.
      this.#recordTime()
      this.#plan!.lateFailure()
      if (this.#isHeadSent) this.cut()
      else this.#sendError(failure.answer, false)
      return
    }
    if (!attempt.isReplay && failure.isResetLike && attempt.hasNoResponseBytes && this.#isBodyReplayable) {
      // Stale keep-alive replay (proxy.md §3): the same attempt again on a new connection; not a try, not feedback.
      this.#counters!.retries.stale_socket += 1
      this.#startAttempt(attempt.peer, true)
      return
    }
    this.#settleFailure(failure, attempt.hasConnected)
  }

  #settleFailure(failure: FailureClass, hasConnected: boolean): void {
    const plan = this.#plan!
    const next = plan.settle({
      outcome: failure.outcome,
      phase: hasConnected ? 'exchange' : 'connect',
      requestBytesWritten: hasConnected,
      bodyReplayable: this.#isBodyReplayable,
    })
    this.#recordTry('-', true)
    if (next !== null) {
      this.#countRetry(plan)
      this.#startAttempt(next, false)
      return
    }
    this.#sendError(failure.answer, false)
  }

  #countRetry(plan: AttemptPlan): void {
    countRetry(this.#counters!, plan.lastClass)
  }

  #dropAttempt(): void {
    const attempt = this.#attempt
    if (attempt === null) return
    this.#attempt = null
    this.#ctx.pools.discard(attempt.connection)
  }

  #recordTry(status: string, isOver: boolean): void {
    this.#upstreamStatus = this.#upstreamStatus === '' ? status : `${this.#upstreamStatus}, ${status}`
    if (isOver) this.#recordTime()
  }

  #recordTime(): void {
    const elapsedMs = performance.now() - this.#tryStartMs
    observeSeconds(this.#counters!.responseSeconds, RESPONSE_SECONDS_BUCKETS, elapsedMs / 1000)
    const seconds = secondsText(elapsedMs)
    this.#upstreamTimes = this.#upstreamTimes === '' ? seconds : `${this.#upstreamTimes}, ${seconds}`
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Step 6: the response.

  #writeProxiedHead(status: number, headers: string[]): boolean {
    const res = this.res
    if (this.#ctx.isDraining) res.shouldKeepAlive = false
    try {
      res.writeHead(status, headers)
    } catch {
      // A header Node refuses to send (e.g. a bad character the upstream parser let through).
      this.#dropAttempt()
      this.#sendError(INVALID_RESPONSE, false)
      return false
    }
    this.#status = status
    this.#isHeadSent = true
    return true
  }

  /** Runs JS onResponse before the head goes out. Returns whether the upstream body may flow now: a hook that
   *  settles synchronously (the common case) is answered in place, because a resume issued from inside the head
   *  callback would be undone by the pause that returning false asks for. */
  #runOnProxiedResponse(run: ScriptRun, attempt: Attempt, status: number, headers: string[]): boolean {
    const response = scriptResponseOf(status, headers)
    let result: ReturnType<ScriptRun['onResponse']>
    try {
      result = run.onResponse(response)
    } catch (error) {
      this.#dropAttempt()
      this.#scriptThrew(error)
      return false
    }
    if (!isPromise(result)) return this.#afterOnResponse(result, attempt, status, response, false)
    result.then((failure) => {
      this.#afterOnResponse(failure, attempt, status, response, true)
    }, (error: unknown) => {
      this.#dropAttempt()
      this.#scriptThrew(error)
    })
    return false
  }

  #afterOnResponse(failure: ScriptFailure | null, attempt: Attempt, status: number, response: ScriptResponse, isLate: boolean): boolean {
    if (this.#isDone) return false
    if (failure !== null) {
      // An onResponse failure replaces the response; the server's body is discarded (scripts.md §5).
      this.#dropAttempt()
      this.#scriptFailed(failure)
      return false
    }
    if (!this.#writeProxiedHead(status, headersOfScriptResponse(response, null))) return false
    if (!isLate) return true
    if (this.#isUpstreamComplete) this.res.end()
    else if (attempt === this.#attempt) attempt.resumeBody?.()
    return false
  }

  #waitForClient(): void {
    const res = this.res
    if (!this.#hasDrainListener) {
      this.#hasDrainListener = true
      res.on('drain', onResponseDrain)
    }
    if (this.#clientSendTimer === null) {
      this.#clientSendTimer = setTimeout(onClientSendTimeout, this.#ctx.settings.clientSendTimeoutMs, this)
      this.#clientSendTimer.unref()
    } else {
      this.#clientSendTimer.refresh()
    }
  }

  onClientDrain(): void {
    if (this.#clientSendTimer !== null) {
      clearTimeout(this.#clientSendTimer)
      this.#clientSendTimer = null
    }
    this.#attempt?.resumeBody?.()
  }

  /** `client_send_timeout`: the client stopped reading; close the connection, keep the status already sent. */
  clientSendTimedOut(): void {
    this.#clientSendTimer = null
    this.#dropAttempt()
    this.cut()
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Generated responses (§6) and script answers.

  #sendError(error: GeneratedError, shouldClose: boolean): void {
    this.#xErrorCode = error.code
    const headers = errorHeadersOf(error, this.requestId, this.#ctx.settings.hasServerHeader)
    this.#sendGenerated(error.status, headers, error.body, shouldClose)
  }

  #sendGenerated(status: number, headers: string[], body: Buffer, shouldClose: boolean): void {
    if (this.#isDone) return
    if (this.#isHeadSent) {
      this.cut()
      return
    }
    const withChanges = withResponseChanges(headers, this.#responseChanges)
    const run = this.#run
    if (run === null || !run.wantsResponse || this.#isScriptFailure) {
      return this.#writeGenerated(status, withChanges, body, shouldClose)
    }
    const response = scriptResponseOf(status, withChanges)
    settle(run.onResponse(response), (failure) => {
      if (this.#isDone) return
      if (failure !== null) return this.#scriptFailed(failure)
      this.#writeGenerated(status, headersOfScriptResponse(response, String(body.length)), body, shouldClose)
    }, (error) => this.#scriptThrew(error))
  }

  #writeGenerated(status: number, headers: string[], body: Buffer, shouldClose: boolean): void {
    const res = this.res
    const requestBody = this.#body
    // Whatever of the request body is unread stays unread: the connection cannot be reused after this response.
    const hasUnreadBody = this.#hasBody && (requestBody === null || !requestBody.isComplete)
    requestBody?.stop()
    if (shouldClose || hasUnreadBody || this.#ctx.isDraining) res.shouldKeepAlive = false
    res.writeHead(status, headers)
    this.#status = status
    this.#isHeadSent = true
    if (this.method === 'HEAD') {
      res.end()
      return
    }
    this.#bodyBytesSent = body.length
    res.end(body)
  }

  #scriptFailed(failure: ScriptFailure): void {
    this.#isScriptFailure = true
    this.#ctx.log.error({
      request_id: this.requestId,
      host: this.#routingHost,
      script: failure.script,
      runtime: failure.runtime,
      version: failure.version,
      err: { message: failure.message, stack: failure.stack },
    }, `script ${failure.runtime}/${failure.script} failed: ${failure.message}`)
    this.#sendError(failure.xErrorCode === 50000002 ? SCRIPT_TIMEOUT : SCRIPT_ERROR, false)
  }

  /** The script host broke its contract (failures should come back as values); answer like a script error. */
  #scriptThrew(error: unknown): void {
    this.#isScriptFailure = true
    const fields = { request_id: this.requestId, host: this.#routingHost, err: error }
    this.#ctx.log.error(fields, 'script host threw instead of returning a failure')
    this.#sendError(SCRIPT_ERROR, false)
  }

  #internalError(error: unknown): void {
    this.#ctx.log.error({ request_id: this.requestId, err: error }, 'unexpected proxy fault')
    this.#dropAttempt()
    if (this.#isDone) return
    if (this.#isHeadSent) this.cut()
    else this.#sendError(INTERNAL_ERROR, true)
  }

  /** Runs a continuation outside undici's and the script host's call stacks with the same fault handling as start. */
  #guard(step: () => void): void {
    try {
      step()
    } catch (error) {
      this.#internalError(error)
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Step 7: the end, one way or another.

  /** The response finished, or the connection closed before it did (client abort, a cut, ngx.exit(444)). */
  onClose(): void {
    if (this.#isDone) return
    this.#isDone = true
    if (this.#clientSendTimer !== null) clearTimeout(this.#clientSendTimer)
    if (!this.res.writableFinished) {
      // Client abort (proxy.md §3): the upstream request is aborted and its socket destroyed; no passive failure.
      this.#dropAttempt()
    }
    this.#body?.stop()
    const status = this.#loggedStatus()
    const ctx = this.#ctx
    countResponse(this.#counters ?? ctx.counters.upstreams[NO_UPSTREAM_LABEL]!, status)
    const run = this.#run
    const wantsLog = run !== null && run.wantsLog
    if (ctx.accessLog.isEnabled || wantsLog) {
      const record = this.#accessRecord(status)
      if (ctx.accessLog.isEnabled) ctx.accessLog.writeLine(httpAccessLine(record))
      if (wantsLog) this.#runOnLog(run, record)
    }
    ctx.exchangeEnded(this)
  }

  #loggedStatus(): number {
    if (this.#ending === 'script_close') return 444
    if (this.res.writableFinished || this.#ending === 'cut_after_head') return this.#status
    return 499
  }

  #accessRecord(status: number): HttpAccessRecord {
    const head = this.#head
    return {
      time: isoTimeNow(),
      remote_addr: this.remoteAddress || '-',
      method: this.method,
      scheme: 'http',
      host: this.#routingHost || '-',
      request_uri: this.target,
      protocol: `HTTP/${this.req.httpVersion}`,
      status,
      body_bytes_sent: this.#bodyBytesSent,
      referer: head?.referer ?? '-',
      user_agent: head?.userAgent ?? '-',
      x_forwarded_for: head?.xForwardedFor ?? '-',
      upstream: this.#upstream?.name ?? '-',
      upstream_addr: this.#upstreamAddr || '-',
      upstream_status: this.#upstreamStatus || '-',
      upstream_response_time: this.#upstreamTimes || '-',
      request_time: secondsValue(performance.now() - this.#startMs),
      x_error_code: this.#xErrorCode,
      request_id: head?.requestId ?? '-',
    }
  }

  #runOnLog(run: ScriptRun, record: HttpAccessRecord): void {
    try {
      run.onLog(Object.freeze({ ...record }))
    } catch (error) {
      this.#ctx.log.error({ request_id: this.requestId, err: error }, 'script onLog threw')
    }
  }
}

const UNRESOLVED = classifyFailure(Object.assign(new Error('unresolved'), { code: 'EAI_AGAIN' }))

function onResponseClose(this: TrackedResponse): void {
  this[kExchange]?.onClose()
}

function onResponseDrain(this: TrackedResponse): void {
  this[kExchange]?.onClientDrain()
}

function onClientSendTimeout(exchange: Exchange): void {
  exchange.clientSendTimedOut()
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/** Calls `then` synchronously for a plain value, after resolution for a promise. */
function settle<T>(value: T | Promise<T>, then: (result: T) => void, fail: (error: unknown) => void): void {
  if (isPromise(value)) value.then(then, fail)
  else then(value)
}

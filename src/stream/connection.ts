/** One client connection of the stream proxy (proxy.md §9), from accept to its access-log record:
 *  - connect: the client socket stays paused (the listener accepts with `pauseOnConnect`) while the attempt plan picks
 *    servers one at a time; each attempt is bounded by the upstream's connect timeout (a socket timeout, not a timer
 *    of our own) and every failure goes back through the plan, which feeds passive health and decides on a retry;
 *  - relay: both directions piped with backpressure, half-close kept, an error or reset on one side destroys both
 *    (a reset is passed on as a reset), and `stream.idle_timeout` without bytes closes both;
 *  - finish: when both sockets are closed, one record goes to the host.
 *  Owns both sockets of a connection. Leaves listeners, the set of open connections, drain deadlines and counters to
 *  proxy.ts, and picking, retries and passive health to checkups (upstreams.md §3.2).
 *  Event handlers are module functions registered on each socket that find their connection through a symbol
 *  property, so a connection creates no closures (style.md, Hot path). */
import { connect as connectTcp } from 'node:net'
import type { Socket } from 'node:net'
import type { AttemptPlan, AttemptPlanner, AttemptReport, Peer, Upstream } from '../checkups/index.js'
import type { Logger } from '../log.js'
import { clientAddress, isoTime, MISSING_TEXT, secondsText, secondsValue } from './access-log.js'
import type { StreamLogRecord, StreamStatus } from './access-log.js'

/** Where upstreams are looked up; `UpstreamTable` satisfies it. Read once per connection, at accept. */
export interface UpstreamSource {
  get(name: string): Upstream | undefined
}

/** What every connection of one proxy shares. */
export interface ConnectionHost {
  readonly upstreams: UpstreamSource
  /** planner and idleTimeoutMs are replaced by a SIGHUP reload (StreamProxy.reconfigure); read them from here. */
  planner: AttemptPlanner
  idleTimeoutMs: number
  readonly log: Logger
  /** Called once, when both sockets are closed. */
  connectionClosed(connection: StreamConnection, record: StreamLogRecord): void
}

/** One listener: its configured port names the upstream (`stream:<port>`). */
export interface ListenerInfo {
  readonly port: number
  readonly upstreamName: string
}

/** How a connection ended, for the log status and the `stream_connections_total` result label (admin-api.md). */
export type ConnectionResult = 'ok' | 'no_server' | 'connect_failed' | 'client_closed' | 'internal_error'

const STATUS_OF: Readonly<Record<ConnectionResult, StreamStatus>> = {
  ok: 200,
  no_server: 502,
  connect_failed: 502,
  client_closed: 499,
  internal_error: 500,
}

/** A connected stream attempt is a success; the planner classifies every stream response as one (tries.ts). */
const CONNECTED: AttemptReport = { outcome: 'response', status: 200, bodyReplayable: true }
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})
/** `connectTimesMs` entry of an attempt that did not connect. */
const NOT_CONNECTED = -1

const kConnection = Symbol('stream.connection')
type TrackedSocket = Socket & { [kConnection]: StreamConnection }

export class StreamConnection {
  readonly client: Socket
  readonly listener: ListenerInfo
  /** The drain this connection is in (one server-removal batch, or shutdown), whose deadline closes it; null while
   *  none. A connection let go by `keepServers` and drained again later belongs to the later drain only. */
  drain: object | null = null
  readonly #host: ConnectionHost
  readonly #acceptedAtMs = performance.now()
  readonly #remoteAddress: string | undefined
  #plan: AttemptPlan | null = null
  /** The server of the running attempt, then of the relay. */
  #peer: Peer | null = null
  /** The running attempt's socket, then the relay's upstream side; null between attempts and after giving up. */
  #upstream: Socket | null = null
  #attemptStartMs = 0
  /** One entry per attempt, in order: connect time, or NOT_CONNECTED. */
  readonly #connectTimesMs: number[] = []
  #result: ConnectionResult | null = null
  #isRelaying = false
  #isClientClosed = false
  #isUpstreamClosed = false
  #isFinished = false

  constructor(client: Socket, listener: ListenerInfo, host: ConnectionHost) {
    this.client = client
    this.listener = listener
    this.#host = host
    this.#remoteAddress = client.remoteAddress
  }

  /** The server this connection is attempting or relaying to. */
  get peer(): Peer | null {
    return this.#peer
  }

  /** How it ended; null while it is open. */
  get result(): ConnectionResult | null {
    return this.#isFinished ? this.#result : null
  }

  get isFinished(): boolean {
    return this.#isFinished
  }

  /** Looks up the upstream (once: later config changes never touch this connection) and starts the first attempt. */
  start(): void {
    const client = this.client as TrackedSocket
    client[kConnection] = this
    client.on('error', onSocketError)
    client.on('close', onClientClose)
    const upstream = this.#host.upstreams.get(this.listener.upstreamName)
    if (upstream === undefined) {
      this.#giveUp('no_server')
      return
    }
    try {
      this.#plan = this.#host.planner.begin(upstream, {
        method: '', target: '', remoteAddress: this.#remoteAddress, headers: NO_HEADERS,
      })
      this.#attempt(this.#plan.first())
    } catch (err) {
      this.#internalError(err)
    }
  }

  /** Drain deadline or shutdown: close both sides now. A connection still connecting gets no upstream (502), and
   *  the server it was connecting to is not blamed for it. */
  cut(): void {
    if (!this.#isRelaying && this.#result === null) {
      this.#abandonAttempt()
      this.#giveUp('connect_failed')
      return
    }
    this.#upstream?.destroy()
    this.client.destroy()
  }

  #attempt(peer: Peer | null): void {
    if (peer === null) {
      this.#giveUp(this.#plan!.attempts === 0 ? 'no_server' : 'connect_failed')
      return
    }
    this.#peer = peer
    this.#attemptStartMs = performance.now()
    if (peer.address === null) {
      // An unresolved hostname fails its attempt at once, class `error` (upstreams.md §1.5).
      this.#attemptFailed('error', peer.resolveError ?? MISSING_TEXT)
      return
    }
    const socket = connectTcp({
      host: peer.address,
      port: peer.port,
      allowHalfOpen: true,
      noDelay: true,
      timeout: this.#plan!.upstream.connectTimeoutMs,
    }) as TrackedSocket
    socket[kConnection] = this
    socket.on('connect', onUpstreamConnect)
    socket.on('timeout', onUpstreamTimeout)
    socket.on('error', onSocketError)
    socket.on('close', onUpstreamClose)
    this.#upstream = socket
  }

  /** Handler bodies. Each checks that the socket is still the current one: a discarded attempt's late events
   *  (its `close`, say) must not touch the connection. */
  handleUpstreamConnect(socket: Socket): void {
    if (socket !== this.#upstream) return
    this.#connectTimesMs.push(performance.now() - this.#attemptStartMs)
    this.#plan!.settle(CONNECTED)
    this.#result = 'ok'
    this.#isRelaying = true
    const client = this.client
    const idleMs = this.#host.idleTimeoutMs
    // A timeout on either socket means no byte went through it for idleMs, and every relayed byte passes both.
    socket.setTimeout(idleMs)
    client.setTimeout(idleMs)
    client.on('timeout', onRelayIdle)
    // Node pipes keep backpressure and, with allowHalfOpen on both sockets, turn one side's end into an end of
    // the other's write side (half-close); resuming the paused client is part of pipe().
    client.pipe(socket)
    socket.pipe(client)
  }

  handleUpstreamTimeout(socket: Socket): void {
    if (socket !== this.#upstream) return
    if (this.#isRelaying) this.handleRelayIdle()
    else this.#attemptFailed('timeout', `connect timeout (${this.#plan!.upstream.connectTimeoutMs} ms)`)
  }

  handleUpstreamError(socket: Socket, err: Error): void {
    if (socket !== this.#upstream) return
    if (!this.#isRelaying) this.#attemptFailed('error', errorText(err))
    else this.#logRelayError('upstream', err)
  }

  handleClientError(err: Error): void {
    if (this.#isRelaying) this.#logRelayError('client', err)
  }

  handleRelayIdle(): void {
    this.cut()
  }

  handleClientClose(hadError: boolean): void {
    this.#isClientClosed = true
    if (this.#isRelaying) {
      if (!this.#isUpstreamClosed && !closedCleanly(this.client, hadError)) endOther(this.#upstream!, hadError)
    } else if (this.#result === null) {
      // Gone before an upstream was connected: abandon the attempt without blaming its server.
      this.#result = 'client_closed'
      this.#abandonAttempt()
    }
    this.#finishIfDone()
  }

  handleUpstreamClose(socket: Socket, hadError: boolean): void {
    if (socket !== this.#upstream) return
    if (!this.#isRelaying) {
      // Closed while connecting without an error or timeout first (not expected from Node): a failed attempt.
      this.#attemptFailed('error', 'closed while connecting')
      return
    }
    this.#isUpstreamClosed = true
    if (!this.#isClientClosed && !closedCleanly(socket, hadError)) endOther(this.client, hadError)
    this.#finishIfDone()
  }

  #attemptFailed(cls: 'error' | 'timeout', reason: string): void {
    const peer = this.#peer!
    const socket = this.#upstream
    this.#upstream = null
    socket?.destroy()
    this.#connectTimesMs.push(NOT_CONNECTED)
    const log = this.#host.log
    log.warn({ port: this.listener.port, upstream: this.listener.upstreamName, peer: peer.id, reason },
      'stream: connect to upstream server failed')
    try {
      const next = this.#plan!.settle({ outcome: cls, phase: 'connect', requestBytesWritten: false, bodyReplayable: true })
      this.#attempt(next)
    } catch (err) {
      this.#internalError(err)
    }
  }

  /** Ends the running attempt, if any, without settling it: it was not the server's fault. */
  #abandonAttempt(): void {
    const socket = this.#upstream
    if (socket === null) return
    this.#upstream = null
    this.#connectTimesMs.push(NOT_CONNECTED)
    socket.destroy()
  }

  #giveUp(result: ConnectionResult): void {
    this.#result = result
    // Slardar behaviour: the client is simply closed (proxy.md §9).
    if (this.#isClientClosed) this.#finishIfDone()
    else this.client.destroy()
  }

  #internalError(err: unknown): void {
    this.#host.log.error({ err, port: this.listener.port, upstream: this.listener.upstreamName },
      'stream: internal error while connecting a client')
    this.#abandonAttempt()
    this.#giveUp('internal_error')
  }

  #logRelayError(side: 'client' | 'upstream', err: Error): void {
    const log = this.#host.log
    if (!log.isLevelEnabled('debug')) return
    log.debug({ port: this.listener.port, peer: this.#peer?.id, side, reason: errorText(err) }, 'stream: relay error')
  }

  #finishIfDone(): void {
    if (this.#isFinished || !this.#isClientClosed) return
    if (this.#upstream !== null && !this.#isUpstreamClosed) return
    this.#isFinished = true
    this.#host.connectionClosed(this, this.#buildRecord())
  }

  #buildRecord(): StreamLogRecord {
    const client = this.client
    const tried = this.#plan?.tried.list() ?? []
    let addresses = MISSING_TEXT
    let connectTimes = MISSING_TEXT
    for (let i = 0; i < tried.length; i++) {
      const ms = this.#connectTimesMs[i] ?? NOT_CONNECTED
      const time = ms === NOT_CONNECTED ? MISSING_TEXT : secondsText(ms)
      addresses = i === 0 ? tried[i]!.id : `${addresses}, ${tried[i]!.id}`
      connectTimes = i === 0 ? time : `${connectTimes}, ${time}`
    }
    return {
      type: 'stream',
      time: isoTime(Date.now()),
      remote_addr: clientAddress(this.#remoteAddress),
      port: this.listener.port,
      status: STATUS_OF[this.#result ?? 'internal_error'],
      upstream_addr: addresses,
      upstream_connect_time: connectTimes,
      bytes_in: client.bytesRead,
      // Bytes handed to the client's socket: when a connection breaks, what was still queued (at most one pipe
      // buffer, as backpressure bounds it) counts as sent, as nginx counts what reached the kernel.
      bytes_out: client.bytesWritten,
      connection_time: secondsValue(performance.now() - this.#acceptedAtMs),
    }
  }
}

/** Both directions of this socket ended normally, so the other socket is finishing on its own: its read side has
 *  ended (our end of this socket's write side followed it) and its write side is ending (this side's end did it). */
function closedCleanly(socket: Socket, hadError: boolean): boolean {
  return !hadError && socket.readableEnded && socket.writableFinished
}

/** One side failed or was destroyed: the other goes too, with a reset if this side was reset or errored, so the
 *  client (or server) learns that the stream broke rather than ended. */
function endOther(other: Socket, hadError: boolean): void {
  if (other.destroyed) return
  if (hadError) other.resetAndDestroy()
  else other.destroy()
}

function errorText(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code
  return code ?? err.message
}

function onUpstreamConnect(this: TrackedSocket): void {
  this[kConnection].handleUpstreamConnect(this)
}

function onUpstreamTimeout(this: TrackedSocket): void {
  this[kConnection].handleUpstreamTimeout(this)
}

function onSocketError(this: TrackedSocket, err: Error): void {
  const connection = this[kConnection]
  if (this === connection.client) connection.handleClientError(err)
  else connection.handleUpstreamError(this, err)
}

function onUpstreamClose(this: TrackedSocket, hadError: boolean): void {
  this[kConnection].handleUpstreamClose(this, hadError)
}

function onClientClose(this: TrackedSocket, hadError: boolean): void {
  this[kConnection].handleClientClose(hadError)
}

function onRelayIdle(this: TrackedSocket): void {
  this[kConnection].handleRelayIdle()
}

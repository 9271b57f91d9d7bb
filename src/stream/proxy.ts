/** The TCP stream proxy of one process (proxy.md §9): one listener per `stream.listen` entry, the set of open
 *  connections, the drains that end them (§7: their server left its upstream; §10: shutdown), per-port counters
 *  and the access log. Config changes reach it only through `closeServers`: a connection keeps the upstream it
 *  found at accept, so an update that keeps its server never touches it.
 *  Owns listeners and connection lifetimes. Leaves each connection's sockets to connection.ts, and what the owner
 *  does with counts (metrics, the shutdown WARN) to the process owner (cluster). */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { streamUpstreamName } from '../checkups/index.js'
import type { AttemptPlanner, PeerRef } from '../checkups/index.js'
import type { Logger } from '../log.js'
import type { AccessLogSink, StreamLogRecord } from './access-log.js'
import { StreamConnection } from './connection.js'
import type { ConnectionHost, ListenerInfo, UpstreamSource } from './connection.js'
import { ListenFailedError } from './errors.js'


/** The drain of every connection at shutdown (its deadline is shutdown's own). */
const SHUTDOWN_DRAIN = Object.freeze({ reason: 'shutdown' })
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/** The options read here. The validated `Config` satisfies it; stream/ imports nothing from config/ (style.md). */
export interface StreamProxyConfig {
  readonly stream: {
    /** `stream.listen`: the configured port names the upstream, `stream_upstreams/<port>`. */
    readonly listen: readonly ListenAddress[]
    /** Seconds without a byte in either direction before both sides are closed. */
    readonly idle_timeout: number
  }
  readonly proxy: {
    /** Seconds a connection to a removed server may continue. */
    readonly drain_timeout: number
  }
}

export interface StreamProxyOptions {
  readonly config: StreamProxyConfig
  /** Looked up once per connection; `UpstreamTable` satisfies it. */
  readonly upstreams: UpstreamSource
  /** The process's planner: its `onFeedback` carries connect failures to passive health. */
  readonly planner: AttemptPlanner
  readonly accessLog: AccessLogSink
  readonly log: Logger
}

/** Cumulative counts for one configured port, for `stream_connections_total` and `stream_bytes_total`
 *  (admin-api.md, Metrics). A connection counts when it closes. */
export interface StreamPortStats {
  readonly port: number
  readonly ok: number
  readonly no_server: number
  readonly connect_failed: number
  readonly bytes_in: number
  readonly bytes_out: number
}

export interface StreamStats {
  /** Open client connections, connecting or relaying. */
  readonly active: number
  /** Open connections with a drain deadline (`slardar_draining_connections{kind="stream"}`). */
  readonly draining: number
  readonly ports: readonly StreamPortStats[]
}

type PortCounters = { -readonly [K in keyof StreamPortStats]: StreamPortStats[K] }

export class StreamProxy {
  #config: StreamProxyConfig
  #accessLog: AccessLogSink
  readonly #log: Logger
  readonly #host: ConnectionHost
  readonly #servers: Server[] = []
  readonly #connections = new Set<StreamConnection>()
  readonly #counters = new Map<number, PortCounters>()
  readonly #drainTimers = new Set<NodeJS.Timeout>()
  #drainingCount = 0
  #hasListened = false
  #shutdown: Promise<{ readonly cut: number }> | null = null
  /** Set while a shutdown waits for the last connection to close. */
  #onAllClosed: (() => void) | null = null

  constructor(options: StreamProxyOptions) {
    this.#config = options.config
    this.#accessLog = options.accessLog
    this.#log = options.log
    this.#host = {
      upstreams: options.upstreams,
      planner: options.planner,
      idleTimeoutMs: options.config.stream.idle_timeout * 1000,
      log: options.log,
      connectionClosed: (connection, record) => this.#connectionClosed(connection, record),
    }
  }

  /** Binds every `stream.listen` entry and returns the bound addresses in the same order. If one cannot be bound,
   *  the ones already bound are closed and a `ListenFailedError` names the entry. */
  async listen(): Promise<readonly ListenAddress[]> {
    if (this.#hasListened || this.#shutdown !== null) throw new Error('StreamProxy.listen() may be called once, before shutdown()')
    this.#hasListened = true
    const bound: ListenAddress[] = []
    const entries = this.#config.stream.listen
    for (let index = 0; index < entries.length; index++) {
      const entry = entries[index]!
      const listener: ListenerInfo = { port: entry.port, upstreamName: streamUpstreamName(entry.port) }
      if (!this.#counters.has(entry.port)) {
        this.#counters.set(entry.port, { port: entry.port, ok: 0, no_server: 0, connect_failed: 0, bytes_in: 0, bytes_out: 0 })
      }
      // pauseOnConnect: no client byte is read before an upstream is connected. allowHalfOpen: a client's end
      // must not end our write side toward it (half-close, proxy.md §9).
      const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => this.#accept(socket, listener))
      try {
        bound.push(await listenOn(server, entry))
      } catch (err) {
        for (const open of this.#servers) open.close()
        this.#servers.length = 0
        throw new ListenFailedError(index, formatAddress(entry), listenFailure(err), { cause: err })
      }
      server.on('error', (err) => this.#log.error({ err, port: entry.port }, 'stream: listener error'))
      this.#servers.push(server)
    }
    if (bound.length > 0) this.#log.info({ listen: bound.map(formatAddress) }, 'stream: listening')
    return bound
  }

  /** SIGHUP reload (proxy.md §10): `stream.idle_timeout`, the planner and the access log apply to connections accepted
   *  from now on; `stream.listen` is not re-read (listeners change by rolling the workers). */
  reconfigure(options: Pick<StreamProxyOptions, 'config' | 'planner' | 'accessLog'>): void {
    this.#config = { ...options.config, stream: { ...options.config.stream, listen: this.#config.stream.listen } }
    this.#accessLog = options.accessLog
    this.#host.planner = options.planner
    this.#host.idleTimeoutMs = options.config.stream.idle_timeout * 1000
  }

  stats(): StreamStats {
    const ports: StreamPortStats[] = []
    for (const counters of this.#counters.values()) ports.push({ ...counters })
    return { active: this.#connections.size, draining: this.#drainingCount, ports }
  }

  /** Servers that left their upstream (or whose upstream was deleted), as `ApplyReport.removed` lists them: their
   *  connections may continue until `proxy.drain_timeout`, then they are closed (proxy.md §7). Returns how many
   *  connections started draining. References to HTTP upstreams match nothing here. */
  closeServers(removed: readonly PeerRef[]): number {
    if (removed.length === 0 || this.#connections.size === 0) return 0
    const removedByUpstream = new Map<string, Set<string>>()
    for (const ref of removed) {
      let ids = removedByUpstream.get(ref.upstream)
      if (ids === undefined) removedByUpstream.set(ref.upstream, (ids = new Set()))
      ids.add(ref.peer)
    }
    // A scan of the open connections: removals are rare, and it keeps per-connection bookkeeping at zero.
    const batch: StreamConnection[] = []
    for (const connection of this.#connections) {
      const peer = connection.peer
      if (connection.drain !== null || peer === null) continue
      if (removedByUpstream.get(connection.listener.upstreamName)?.has(peer.id) !== true) continue
      this.#markDraining(connection, batch)
      batch.push(connection)
    }
    if (batch.length === 0) return 0
    const drainMs = this.#config.proxy.drain_timeout * 1000
    this.#log.info({ connections: batch.length, drain_timeout_ms: drainMs }, 'stream: draining connections to removed servers')
    const timer = setTimeout(() => {
      this.#drainTimers.delete(timer)
      // keepServers may have let some of the batch go on, and a later drain may have taken them since.
      const cut = this.#cut(batch.filter((connection) => connection.drain === batch))
      if (cut > 0) this.#log.warn({ connections: cut }, 'stream: closed connections to removed servers at drain_timeout')
    }, drainMs)
    // The sockets keep the process alive while they are open; the timer alone must not.
    timer.unref()
    this.#drainTimers.add(timer)
    return batch.length
  }

  /** Servers new to their upstream (`ApplyReport.added`): connections draining because that server had left go on
   *  as if it never had (a remove and re-add in two KV writes must not cut them). Shutdown drains stay. */
  keepServers(added: readonly PeerRef[]): void {
    if (added.length === 0 || this.#shutdown !== null || this.#drainingCount === 0) return
    const addedIds = new Set(added.map((ref) => `${ref.upstream}\n${ref.peer}`))
    for (const connection of this.#connections) {
      const peer = connection.peer
      if (connection.drain === null || peer === null || !addedIds.has(`${connection.listener.upstreamName}\n${peer.id}`)) continue
      connection.drain = null
      this.#drainingCount -= 1
    }
  }

  /** Stops accepting at once, lets open connections continue, and closes what is left at `drainTimeoutMs`.
   *  Resolves when every connection has closed (and been logged) with how many were cut at the deadline.
   *  A second call returns the first call's promise. */
  shutdown(drainTimeoutMs: number): Promise<{ readonly cut: number }> {
    if (this.#shutdown !== null) return this.#shutdown
    for (const server of this.#servers) server.close()
    for (const connection of this.#connections) {
      if (connection.drain === null) this.#markDraining(connection, SHUTDOWN_DRAIN)
    }
    this.#shutdown = new Promise((resolve) => {
      let cut = 0
      const deadline = setTimeout(() => {
        cut = this.#cut([...this.#connections])
      }, drainTimeoutMs)
      this.#onAllClosed = () => {
        clearTimeout(deadline)
        for (const timer of this.#drainTimers) clearTimeout(timer)
        this.#drainTimers.clear()
        this.#onAllClosed = null
        resolve({ cut })
      }
      if (this.#connections.size === 0) this.#onAllClosed()
    })
    return this.#shutdown
  }

  #accept(socket: Socket, listener: ListenerInfo): void {
    if (this.#shutdown !== null) {
      socket.destroy()
      return
    }
    const connection = new StreamConnection(socket, listener, this.#host)
    this.#connections.add(connection)
    connection.start()
  }

  #markDraining(connection: StreamConnection, drain: object): void {
    connection.drain = drain
    this.#drainingCount += 1
  }

  #cut(connections: readonly StreamConnection[]): number {
    let cut = 0
    for (const connection of connections) {
      if (connection.isFinished) continue
      connection.cut()
      cut += 1
    }
    return cut
  }

  #connectionClosed(connection: StreamConnection, record: StreamLogRecord): void {
    this.#connections.delete(connection)
    if (connection.drain !== null) this.#drainingCount -= 1
    const counters = this.#counters.get(connection.listener.port)
    if (counters !== undefined) {
      const result = connection.result
      if (result === 'ok' || result === 'no_server' || result === 'connect_failed') counters[result] += 1
      counters.bytes_in += record.bytes_in
      counters.bytes_out += record.bytes_out
    }
    try {
      this.#accessLog.write(record)
    } catch (err) {
      this.#log.error({ err }, 'stream: access log write failed')
    }
    if (this.#connections.size === 0) this.#onAllClosed?.()
  }
}

function listenOn(server: Server, address: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject)
      const actual = server.address()
      resolve(actual !== null && typeof actual === 'object' ? { host: actual.address, port: actual.port } : address)
    })
  })
}

function formatAddress(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

/** The reason a user can act on, for the common causes; the Node message otherwise. */
function listenFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  switch (code) {
    case 'EADDRINUSE':
      return 'address already in use'
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)'
    case 'EADDRNOTAVAIL':
      return 'address not available on this machine'
    default:
      return err instanceof Error ? err.message : String(err)
  }
}

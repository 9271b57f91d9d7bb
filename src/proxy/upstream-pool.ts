/** Keep-alive connections to upstream servers, per server (`host:port` id) per process (proxy.md §3). Each connection is
 *  one undici `Client` that owns at most one socket (the engine measured fastest, bench/engine-compare.ts); idle ones
 *  sit on a LIFO stack per server, at most `keepalive` of them, and close after `upstream_idle_timeout`. Owning the
 *  Client per socket is what tells an attempt whether its request went out on a reused socket (the stale keep-alive
 *  replay of §3). Leaves timeouts of an exchange, retries and health to the exchange and checkups. */
import type { Socket } from 'node:net'
import { buildConnector, Client } from 'undici'
import type { Peer } from '../checkups/index.js'

/** Largest response head accepted from a server; generous, since cookies and CSP headers add up. */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024
const kConnection = Symbol('upstreamConnection')

/** One upstream socket's Client and what the pool knows about it. */
export class UpstreamConnection {
  readonly client: Client
  readonly server: ServerConnections
  /** The socket the connector produced last; null until the first connect. */
  socket: Socket | null = null
  isIdle = false

  constructor(server: ServerConnections, origin: string, connect: buildConnector.connector, idleTimeoutMs: number) {
    this.server = server
    // Per-socket closure, once per connection (not per request): records the socket so attempts can tell reuse.
    const recordSocket: buildConnector.connector = (options, callback) =>
      connect(options, (...args: [null, Socket] | [Error, null]) => {
        if (args[1] !== null) this.socket = args[1]
        ;(callback as (...a: [null, Socket] | [Error, null]) => void)(...args)
      })
    this.client = new Client(origin, {
      connect: recordSocket,
      pipelining: 1,
      keepAliveTimeout: idleTimeoutMs,
      keepAliveMaxTimeout: idleTimeoutMs,
      maxHeaderSize: MAX_RESPONSE_HEAD_BYTES,
    })
    ;(this.client as Client & { [kConnection]: UpstreamConnection })[kConnection] = this
    this.client.on('disconnect', onClientDisconnect)
    // Errors reach the dispatch handler; a Client emitting 'error' with no listener would crash the process.
    this.client.on('connectionError', ignore)
  }

  /** A socket that is open now: a request dispatched on it goes out on a reused connection. */
  get hasLiveSocket(): boolean {
    const socket = this.socket
    return socket !== null && !socket.destroyed
  }

  destroy(): void {
    this.isIdle = false
    this.client.destroy().catch(ignore)
  }
}

function ignore(): void {}

/** An idle socket closed (idle timeout, or the server closed it): forget it. */
function onClientDisconnect(this: Client): void {
  const connection = (this as Client & { [kConnection]?: UpstreamConnection })[kConnection]
  if (connection === undefined || !connection.isIdle) return
  connection.server.forget(connection)
  connection.destroy()
}

/** The idle stack of one server. */
export class ServerConnections {
  readonly id: string
  readonly idle: UpstreamConnection[] = []
  /** Connections handed out and not yet returned. */
  busy = 0

  constructor(id: string) {
    this.id = id
  }

  forget(connection: UpstreamConnection): void {
    const at = this.idle.indexOf(connection)
    if (at >= 0) this.idle.splice(at, 1)
  }
}

export interface PoolOptions {
  readonly upstreamIdleTimeoutMs: number
}

export class UpstreamPools {
  readonly #servers = new Map<string, ServerConnections>()
  /** One connector per connect timeout in use; upstreams may set their own (upstreams.md §1.2). */
  readonly #connectors = new Map<number, buildConnector.connector>()
  #idleTimeoutMs: number

  constructor(options: PoolOptions) {
    this.#idleTimeoutMs = options.upstreamIdleTimeoutMs
  }

  /** SIGHUP reload: sockets opened from now on close after `ms` idle; open ones keep the value they were made with. */
  setIdleTimeout(ms: number): void {
    this.#idleTimeoutMs = ms
  }

  /** The most recently used idle connection to the peer, or a new one (connected on first dispatch with
   *  `connectTimeoutMs`). The peer must have an address. */
  checkout(peer: Peer, connectTimeoutMs: number): UpstreamConnection {
    let server = this.#servers.get(peer.id)
    if (server === undefined) {
      server = new ServerConnections(peer.id)
      this.#servers.set(peer.id, server)
    }
    server.busy += 1
    const idle = server.idle
    while (idle.length > 0) {
      const connection = idle.pop()!
      connection.isIdle = false
      if (connection.hasLiveSocket) return connection
      connection.destroy()
    }
    return new UpstreamConnection(server, originOf(peer), this.#connector(connectTimeoutMs), this.#idleTimeoutMs)
  }

  /** After a response was read completely: keep the socket if it is still open and the server has room
   *  (`keepalive` idle sockets at most), else close it. */
  checkin(connection: UpstreamConnection, keepalive: number): void {
    const server = connection.server
    server.busy -= 1
    if (connection.hasLiveSocket && server.idle.length < keepalive && this.#servers.get(server.id) === server) {
      connection.isIdle = true
      server.idle.push(connection)
      return
    }
    connection.destroy()
    this.#dropIfUnused(server)
  }

  /** After an aborted or failed exchange, or a response not read to its end: the socket is never reused. */
  discard(connection: UpstreamConnection): void {
    connection.server.busy -= 1
    connection.destroy()
    this.#dropIfUnused(connection.server)
  }

  /** A server left its upstream: close its idle sockets at once (§3). Busy ones finish their exchange and are then
   *  closed rather than pooled, because the server's pool is gone from the map. */
  closeServer(id: string): void {
    const server = this.#servers.get(id)
    if (server === undefined) return
    this.#servers.delete(id)
    for (const connection of server.idle.splice(0)) connection.destroy()
  }

  closeAll(): void {
    for (const id of [...this.#servers.keys()]) this.closeServer(id)
  }

  /** Idle sockets per server id, for tests and status. */
  idleCounts(): Map<string, number> {
    const counts = new Map<string, number>()
    for (const [id, server] of this.#servers) counts.set(id, server.idle.length)
    return counts
  }

  #dropIfUnused(server: ServerConnections): void {
    if (server.busy === 0 && server.idle.length === 0 && this.#servers.get(server.id) === server) this.#servers.delete(server.id)
  }

  #connector(timeoutMs: number): buildConnector.connector {
    let connector = this.#connectors.get(timeoutMs)
    if (connector === undefined) {
      connector = buildConnector({ timeout: timeoutMs, keepAlive: true, noDelay: true } as buildConnector.BuildOptions)
      this.#connectors.set(timeoutMs, connector)
    }
    return connector
  }
}

function originOf(peer: Peer): string {
  const address = peer.address!
  return address.includes(':') ? `http://[${address}]:${peer.port}` : `http://${address}:${peer.port}`
}

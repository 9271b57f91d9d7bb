/** Shared set-up for the stream tests: a StreamProxy wired as the cluster wires it with `workers: 0` — a real
 *  `CheckupsPrimary` (its table is the upstream source, its `report` takes the planner's feedback), upstream values
 *  through `parseUpstreamJson` with `{ stream: true }`, `closeServers(report.removed)` and `keepServers(report.added)` after every install — plus
 *  backends and clients on 127.0.0.1. Heartbeats are off by default (`global.default_heartbeat_enable: false`) so
 *  backends see only relayed connections. */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import type { TestContext } from 'node:test'
import {
  AttemptPlanner, CheckupsPrimary, parseUpstreamJson, streamUpstreamName, upstreamDefaultsFrom,
} from '../../src/checkups/index.js'
import type { ApplyReport } from '../../src/checkups/index.js'
import { buildConfig } from '../../src/config/index.js'
import type { Config } from '../../src/config/index.js'
import { createSilentLogger } from '../../src/log.js'
import { StreamProxy } from '../../src/stream/index.js'
import type { StreamLogRecord } from '../../src/stream/index.js'
import { LOOPBACK, refusingPort } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'

export interface StreamHarness {
  readonly proxy: StreamProxy
  readonly primary: CheckupsPrimary
  readonly config: Config
  /** The configured (and bound) listening port; the upstream is `stream_upstreams/<port>`. */
  readonly port: number
  readonly records: StreamLogRecord[]
  /** Parses and installs `stream_upstreams/<port>`, then drains what the install removed. */
  setUpstream(value: object): Promise<ApplyReport>
  deleteUpstream(): Promise<ApplyReport>
  /** Waits for the n-th access-log line (1-based) and returns it. */
  record(n: number): Promise<StreamLogRecord>
}

/** `raw` is merged into the config document; `stream.listen` is filled with a free port. */
export async function startStream(t: TestContext, raw: Record<string, Record<string, unknown>> = {}): Promise<StreamHarness> {
  const port = await refusingPort()
  const config = buildConfig({
    ...raw,
    global: { default_heartbeat_enable: false, ...raw['global'] },
    stream: { ...raw['stream'], listen: [port] },
  }, 'test')
  const primary = new CheckupsPrimary({
    checkupTimerIntervalSec: 60, checkupTimerOvertimeSec: 60, heartbeatConcurrency: 16, resolveIntervalSec: 60,
    onBroadcast: () => undefined,
  })
  t.after(() => primary.stop())
  const planner = new AttemptPlanner({ nextUpstream: config.proxy.next_upstream, onFeedback: (r) => primary.report(r) })
  const records: StreamLogRecord[] = []
  const proxy = new StreamProxy({
    config, upstreams: primary.table, planner, log: createSilentLogger(),
    accessLog: { write: (record) => records.push(record as StreamLogRecord) },
  })
  const bound = await proxy.listen()
  assert.deepEqual(bound, [{ host: LOOPBACK, port }])
  t.after(() => proxy.shutdown(0))

  const name = streamUpstreamName(port)
  const install = async (change: Parameters<CheckupsPrimary['install']>[0][number]): Promise<ApplyReport> => {
    const { report, settled } = primary.install([change])
    proxy.closeServers(report.removed)
    proxy.keepServers(report.added)
    await settled
    return report
  }
  return {
    proxy, primary, config, port, records,
    setUpstream(value) {
      const parsed = parseUpstreamJson(`stream_upstreams/${port}`, value, upstreamDefaultsFrom(config), { stream: true })
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.message)
      return install({ kind: 'set', name, definition: parsed.upstream })
    },
    deleteUpstream: () => install({ kind: 'delete', name }),
    record: (n) => waitFor(() => records[n - 1], { withinMs: 5_000, what: `access-log line ${n}` }),
  }
}

/** `{ servers: [{host: 127.0.0.1, port}, …] }` plus any upstream fields. */
export function serversOn(ports: readonly number[], fields: object = {}): object {
  return { ...fields, servers: ports.map((port) => ({ host: LOOPBACK, port })) }
}

export interface EchoBackend {
  readonly port: number
  /** Connections accepted so far. */
  readonly connections: number
  /** Server-side sockets, in accept order. */
  readonly sockets: readonly Socket[]
}

/** Sends back every byte it receives and ends its side when the client ends (half-open kept). */
export function startEchoBackend(t: TestContext): Promise<EchoBackend> {
  return startBackend(t, (socket) => socket.pipe(socket))
}

/** A TCP server running `onConnection` for each accepted socket (half-open kept), closed with the test. */
export async function startBackend(t: TestContext, onConnection: (socket: Socket) => void): Promise<EchoBackend> {
  const sockets: Socket[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket)
    socket.on('error', () => undefined)
    onConnection(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve))
  t.after(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return sockets.length
    },
    sockets,
  }
}

/** A port where a TCP connect neither succeeds nor fails: a listener in a child process whose event loop is blocked,
 *  so it never accepts, with its accept queue filled by idle connections. Linux then drops further SYNs, and a connect
 *  hangs until its timeout, as with a black-holed host. */
export async function startBlackhole(t: TestContext): Promise<number> {
  const child = spawn(process.execPath, ['-e', `
    const server = require('node:net').createServer()
    server.listen({ port: 0, host: '${LOOPBACK}', backlog: 1 }, () => {
      process.stdout.write(server.address().port + '\\n')
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
    })`], { stdio: ['ignore', 'pipe', 'inherit'] })
  const fillers: Socket[] = []
  t.after(() => {
    for (const filler of fillers) filler.destroy()
    child.kill()
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim())))
    child.once('exit', (code) => reject(new Error(`black-hole listener exited with ${code}`)))
  })
  // Fill the accept queue: open connections until one stays pending (the kernel dropped its SYN).
  for (let i = 0; i < 16; i++) {
    const filler = connect({ host: LOOPBACK, port })
    filler.on('error', () => undefined)
    fillers.push(filler)
    const isConnected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 300)
      filler.once('connect', () => {
        clearTimeout(timer)
        resolve(true)
      })
    })
    if (!isConnected) return port
  }
  throw new Error('could not fill the black-hole listener\'s accept queue')
}

export interface Client {
  readonly socket: Socket
  /** Everything received so far. */
  received(): Buffer
  /** Waits (up to `withinMs`, 10 s by default) for the socket to close; the error that closed it, if any. */
  whenClosed(withinMs?: number): Promise<NodeJS.ErrnoException | null>
  readonly isClosed: () => boolean
}

export interface ClientOptions {
  /** Bind the client to this loopback address (ip_hash tests). */
  readonly localAddress?: string
  /** Keep the client's write side open after the server's end (Node's default closes it). */
  readonly allowHalfOpen?: boolean
}

/** A client connected to the stream listener; it reads everything (unless paused) and never throws. */
export async function connectClient(t: TestContext, port: number, options: ClientOptions = {}): Promise<Client> {
  const socket = connect({ host: LOOPBACK, port, ...options })
  t.after(() => socket.destroy())
  const chunks: Buffer[] = []
  let error: NodeJS.ErrnoException | null = null
  let isClosed = false
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.on('error', (err) => (error = err))
  socket.on('close', () => (isClosed = true))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return {
    socket,
    received: () => Buffer.concat(chunks),
    isClosed: () => isClosed,
    async whenClosed(withinMs = 10_000) {
      await waitFor(() => isClosed, { withinMs, what: 'the client socket to close' })
      return error
    },
  }
}

/** Sends `text`, ends the client's side, and resolves with all it received once the connection closed. */
export async function exchange(t: TestContext, port: number, text: string, localAddress?: string): Promise<string> {
  const client = await connectClient(t, port, localAddress === undefined ? {} : { localAddress })
  client.socket.end(text)
  assert.equal(await client.whenClosed(), null)
  return client.received().toString()
}

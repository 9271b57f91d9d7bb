/** Benchmark of the TCP stream proxy against a direct connection, on 127.0.0.1, in one process:
 *  - `bulk`: one connection pushing 512 MiB to a sink backend: MiB/s direct and through the proxy;
 *  - `connect`: short connections (connect, 16-byte echo, close), 64 at a time: connections/s direct and through
 *    the proxy, which pays for the accept, the pick, the upstream connect and one access-log record each.
 *  The proxy runs in the same process as the clients and backends (as with `workers: 0`), so the ratios are a
 *  lower bound for a dedicated worker.
 *
 *  Run: `node dist/bench/stream-relay.js` (after `tsc -p .`). */
import { connect, createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import {
  AttemptPlanner, parseUpstreamJson, streamUpstreamName, UpstreamTable,
} from '../src/checkups/index.js'
import { buildConfig } from '../src/config/index.js'
import { createSilentLogger } from '../src/log.js'
import { StreamProxy } from '../src/stream/index.js'

const LOOPBACK = '127.0.0.1'
const MiB = 1024 * 1024
const BULK_BYTES = 512 * MiB
const CONNECTIONS = 5_000
const PARALLEL = 64

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve) => server.listen(port, LOOPBACK, () => resolve((server.address() as AddressInfo).port)))
}

async function freePort(): Promise<number> {
  const server = createServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Reads everything and ends when the client does. */
async function startSink(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined)
    socket.resume()
    socket.on('end', () => socket.end())
  })
  return { server, port: await listen(server) }
}

async function startEcho(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined)
    socket.pipe(socket)
  })
  return { server, port: await listen(server) }
}

async function bulk(port: number): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 7)
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host: LOOPBACK, port })
    socket.on('error', reject)
    socket.on('close', () => resolve())
    socket.resume()
    let sent = 0
    const pump = (): void => {
      while (sent < BULK_BYTES) {
        sent += chunk.length
        if (!socket.write(chunk)) {
          socket.once('drain', pump)
          return
        }
      }
      socket.end()
    }
    socket.once('connect', pump)
  })
  return BULK_BYTES / MiB / ((performance.now() - started) / 1000)
}

function oneExchange(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: LOOPBACK, port })
    let received = 0
    socket.on('data', (data: Buffer) => {
      received += data.length
      if (received >= 16) socket.end()
    })
    socket.on('error', reject)
    socket.on('close', () => resolve())
    socket.write('0123456789abcdef')
  })
}

async function connectRate(port: number): Promise<number> {
  let next = 0
  const started = performance.now()
  const lane = async (): Promise<void> => {
    while (next < CONNECTIONS) {
      next += 1
      await oneExchange(port)
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, lane))
  return CONNECTIONS / ((performance.now() - started) / 1000)
}

async function main(): Promise<void> {
  const sink = await startSink()
  const echo = await startEcho()
  const [bulkPort, echoPort] = [await freePort(), await freePort()]
  const config = buildConfig({ stream: { listen: [bulkPort, echoPort] } }, 'bench')
  const table = new UpstreamTable()
  table.applyUpstreams([[bulkPort, sink.port], [echoPort, echo.port]].map(([listenPort, backendPort]) => {
    const parsed = parseUpstreamJson('bench', { servers: [{ host: LOOPBACK, port: backendPort }] }, undefined, { stream: true })
    if (!parsed.ok) throw new Error(parsed.message)
    return { kind: 'set' as const, name: streamUpstreamName(listenPort!), definition: parsed.upstream }
  }))
  let lines = 0
  const proxy = new StreamProxy({
    config, upstreams: table, log: createSilentLogger(),
    planner: new AttemptPlanner({ nextUpstream: config.proxy.next_upstream, onFeedback: () => undefined }),
    accessLog: { write: () => void (lines += 1) },
  })
  await proxy.listen()

  const bulkDirect = await bulk(sink.port)
  const bulkProxied = await bulk(bulkPort)
  const rateDirect = await connectRate(echo.port)
  const rateProxied = await connectRate(echoPort)
  console.log(`bulk     direct ${bulkDirect.toFixed(0)} MiB/s, via stream proxy ${bulkProxied.toFixed(0)} MiB/s ` +
    `(ratio ${(bulkProxied / bulkDirect).toFixed(2)})`)
  console.log(`connect  direct ${rateDirect.toFixed(0)} conn/s, via stream proxy ${rateProxied.toFixed(0)} conn/s ` +
    `(ratio ${(rateProxied / rateDirect).toFixed(2)}, ${PARALLEL} in parallel)`)
  await proxy.shutdown(1_000)
  console.log(`access-log lines: ${lines}`)
  sink.server.close()
  echo.server.close()
}

await main()

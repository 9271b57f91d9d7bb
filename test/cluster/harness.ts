/** Runs the real product with worker processes for a test: `node dist/src/cli.js start -c <tmp config>` against the
 *  embedded Consul, on free ports picked here, and waits until `/readyz` says ready. The process is ended by
 *  `t.after` (SIGTERM, then SIGKILL if it lingers). Also: a `script.<host>` Lua script that stamps each response with
 *  the worker that served it, and plain one-connection-per-request HTTP helpers (a new connection per request is
 *  what spreads requests over the workers: the primary hands connections out round-robin). */

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { refusingPort } from '../support/backends.js'
import type { DevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url))
export const PREFIX = 'config/slardar/'

/** Stamps `X-Worker: <id>/<pid>` on every response of its host, then lets the request be proxied (scripts.md §6.3). */
export const WORKER_STAMP_LUA = 'ngx.header["X-Worker"] = ngx.worker.id() .. "/" .. ngx.worker.pid()\n'

export interface RunningCluster {
  /** A temp directory that lives as long as the test (config file; put access logs here). */
  readonly dir: string
  readonly proxyPort: number
  readonly adminPort: number
  readonly child: ChildProcess
  /** stdout and stderr lines so far (JSON log lines). */
  readonly output: string[]
  /** Resolves with the exit code (or the signal name) once the primary exits. */
  readonly exited: Promise<number | string>
}

export interface ClusterOptions {
  readonly workers?: number
  /** Merged over the harness's config sections, one level deep. */
  readonly config?: Record<string, Record<string, unknown>>
  /** A temp directory to use (and remove at the end); one is made when absent. */
  readonly dir?: string
  /** Node options before the CLI path (e.g. a preload), and variables added to the inherited environment. */
  readonly nodeArgs?: readonly string[]
  readonly env?: Readonly<Record<string, string>>
}

export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'slardar-cluster-'))
}

export async function startCluster(t: TestContext, consul: DevConsul, options: ClusterOptions = {}): Promise<RunningCluster> {
  const dir = options.dir ?? await makeTempDir()
  const proxyPort = await refusingPort()
  const adminPort = await refusingPort()
  const sections: Record<string, Record<string, unknown>> = {
    consul: { address: consul.addr, wait: '2s', timeout: 2 },
    global: { checkup_timer_interval: 1 },
    proxy: { listen: [`127.0.0.1:${proxyPort}`], drain_timeout: 10 },
    admin: { listen: `127.0.0.1:${adminPort}` },
    snapshot: { enable: false },
    jobs: { full_resync: null },
    log: { access: 'off', level: 'info' },
  }
  for (const [section, values] of Object.entries(options.config ?? {})) sections[section] = { ...sections[section], ...values }
  const path = join(dir, 'slardar.json5')
  await writeFile(path, JSON.stringify({ ...sections, workers: options.workers ?? 2 }))

  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'start', '-c', path], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  })
  const output: string[] = []
  for (const stream of [child.stdout, child.stderr]) {
    let rest = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop() ?? ''
      output.push(...lines)
    })
  }
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    await rm(dir, { recursive: true, force: true })
  })
  const cluster = { dir, proxyPort, adminPort, child, output, exited }
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`slardar exited with ${child.exitCode}: ${output.join('\n')}`)
    return (await get(adminPort, '/readyz')).status === 200
  }, { withinMs: 20_000, what: 'slardar with workers to be ready' })
  return cluster
}

export interface Reply {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

/** One request on its own connection (`Connection: close`). Rejects with the socket error (its `code` tells). */
export function get(port: number, path: string, host = '127.0.0.1', timeoutMs = 10_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, headers: { host }, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'TEST_TIMEOUT' })))
    req.on('error', reject)
    req.end()
  })
}

export async function getJson(port: number, path: string): Promise<Record<string, unknown>> {
  return JSON.parse((await get(port, path)).body) as Record<string, unknown>
}

/** `<id>/<pid>` of the worker that served a reply stamped by WORKER_STAMP_LUA. */
export function workerOf(reply: Reply): string {
  const stamp = reply.headers['x-worker']
  if (typeof stamp !== 'string') throw new Error(`reply ${reply.status} carries no X-Worker header: ${reply.body}`)
  return stamp
}

/** Sends requests (one connection each) until `isDone` holds for the set of workers seen, at most `maxRequests`.
 *  Returns the replies; every reply must satisfy `accept`, or the loop stops and throws with it. */
export async function requestUntil(
  port: number,
  host: string,
  accept: (reply: Reply) => boolean,
  isDone: (workers: ReadonlySet<string>) => boolean,
  maxRequests: number,
): Promise<{ replies: Reply[]; workers: Set<string> }> {
  const replies: Reply[] = []
  const workers = new Set<string>()
  for (let i = 0; i < maxRequests && !isDone(workers); i++) {
    const reply = await get(port, '/', host)
    if (!accept(reply)) throw new Error(`unexpected reply ${reply.status} ${JSON.stringify(reply.headers)} ${reply.body}`)
    replies.push(reply)
    workers.add(workerOf(reply))
  }
  return { replies, workers }
}

/** An upstream of 127.0.0.1 servers; `server` fields (max_fails, fail_timeout…) go on every server. */
export function upstreamJson(ports: readonly number[], extra: Record<string, unknown> = {}, server: Record<string, unknown> = {}): string {
  return JSON.stringify({ servers: ports.map((port) => ({ host: '127.0.0.1', port, ...server })), ...extra })
}

/** Child processes of the bench runner and the probes that tell when they serve.
 *  Owns spawning (each child leads its own process group, so nginx's workers and Slardar's cluster workers go
 *  with it), the tail of each child's output for error messages, bounded stops, and free-port discovery.
 *  Leaves what to start, and with which configuration, to the callers. */

import { spawn, type ChildProcess } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'

const LOOPBACK = '127.0.0.1'
/** Enough of a child's output to show why it failed, small enough to keep for every child. */
const OUTPUT_TAIL_CHARS = 4096

export interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export class Child {
  private outputTail = ''
  private exitInfo: ExitInfo | null = null
  readonly exited: Promise<ExitInfo>

  constructor(
    readonly label: string,
    private readonly handle: ChildProcess,
  ) {
    const keepTail = (chunk: Buffer): void => {
      this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS)
    }
    // Reading both pipes also keeps a chatty child from blocking on a full pipe.
    handle.stdout?.on('data', keepTail)
    handle.stderr?.on('data', keepTail)
    this.exited = new Promise((resolve) => {
      handle.once('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        resolve(this.exitInfo)
      })
      handle.once('error', (err) => {
        keepTail(Buffer.from(`${err.message}\n`))
        this.exitInfo = { code: null, signal: null }
        resolve(this.exitInfo)
      })
    })
  }

  get pid(): number | undefined {
    return this.handle.pid
  }

  get isRunning(): boolean {
    return this.exitInfo === null
  }

  /** One line that says how the child ended and the last thing it printed, for `not serving: <reason>`. */
  describeExit(): string {
    const info = this.exitInfo
    const how = info === null ? 'still running' : info.signal !== null ? `killed by ${info.signal}` : `exited with code ${info.code}`
    const lastLines = this.outputTail.trim().split('\n').slice(-3).join(' | ')
    return lastLines === '' ? `${this.label} ${how}` : `${this.label} ${how}: ${lastLines}`
  }

  /** Signals the whole process group: nginx's master and workers, or Slardar's primary and workers. */
  signalGroup(signal: NodeJS.Signals): void {
    const pid = this.handle.pid
    if (pid === undefined || !this.isRunning) return
    try {
      process.kill(-pid, signal)
    } catch {
      // The group is already gone.
    }
  }
}

/** Every child the runner started, so that one call stops them all (normal end, error, Ctrl-C). */
export class ChildRegistry {
  private readonly children = new Set<Child>()

  spawn(label: string, command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Child {
    const handle = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    const child = new Child(label, handle)
    this.children.add(child)
    void child.exited.then(() => this.children.delete(child))
    return child
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone or `graceMs` more have passed. */
  async stop(child: Child, graceMs: number): Promise<void> {
    if (!child.isRunning) return
    child.signalGroup('SIGTERM')
    if (await settlesWithin(child.exited, graceMs)) {
      // The leader is gone; make sure none of its workers outlives it.
      child.signalGroup('SIGKILL')
      return
    }
    child.signalGroup('SIGKILL')
    await settlesWithin(child.exited, graceMs)
  }

  async stopAll(graceMs: number): Promise<void> {
    await Promise.all([...this.children].map((child) => this.stop(child, graceMs)))
  }

  /** Last resort from a synchronous `exit` handler: no waiting is possible there. */
  killAllNow(): void {
    for (const child of this.children) child.signalGroup('SIGKILL')
  }
}

function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    void promise.then(() => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

/** A port that was free a moment ago (bound to :0 and closed). nginx needs explicit ports, so this small race
 *  is accepted; a lost race shows as the child's "address already in use" in the report. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, LOOPBACK, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface HttpAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly bodyBytes: number
}

/** One GET on a fresh connection, bounded by `timeoutMs`. */
export function getOnce(url: string, timeoutMs: number): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, timeout: timeoutMs }, (res) => {
      let bodyBytes = 0
      res.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bodyBytes }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

export type ReadyOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string }

export interface ReadyExpectation {
  readonly url: string
  readonly withinMs: number
  /** The answer counts only with this status and body size (null: any size), so a proxy answering 502 is not "ready". */
  readonly status: number
  readonly bodyBytes: number | null
  /** A response header that must be present with this value (e.g. proof that a per-host script ran). */
  readonly header?: { readonly name: string; readonly value: string }
}

const READY_POLL_MS = 100
const READY_REQUEST_TIMEOUT_MS = 2_000

/** Polls until the expected answer arrives, the child exits, or the deadline passes; the reason on failure
 *  quotes the last thing seen so the report explains itself. */
export async function waitUntilServing(child: Child | null, expected: ReadyExpectation): Promise<ReadyOutcome> {
  const deadline = performance.now() + expected.withinMs
  let last = 'no attempt made'
  const maxAttempts = Math.ceil(expected.withinMs / READY_POLL_MS) + 1
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (child !== null && !child.isRunning) return { ok: false, reason: child.describeExit() }
    try {
      const answer = await getOnce(expected.url, READY_REQUEST_TIMEOUT_MS)
      last = describeMismatch(answer, expected)
      if (last === '') return { ok: true }
    } catch (err) {
      const code = (err as { code?: string }).code
      last = code === undefined ? (err as Error).message : `${code}`
    }
    if (performance.now() >= deadline) break
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS))
  }
  if (child !== null && !child.isRunning) return { ok: false, reason: child.describeExit() }
  return { ok: false, reason: `no good answer from ${expected.url} within ${expected.withinMs / 1000} s (last: ${last})` }
}

function describeMismatch(answer: HttpAnswer, expected: ReadyExpectation): string {
  if (answer.status !== expected.status) return `status ${answer.status}, expected ${expected.status}`
  if (expected.bodyBytes !== null && answer.bodyBytes !== expected.bodyBytes) return `${answer.bodyBytes}-byte body, expected ${expected.bodyBytes}`
  if (expected.header !== undefined) {
    const seen = answer.headers[expected.header.name.toLowerCase()]
    if (seen !== expected.header.value) {
      return `header ${expected.header.name} is ${seen === undefined ? 'absent' : JSON.stringify(seen)}, expected ${JSON.stringify(expected.header.value)}`
    }
  }
  return ''
}

/** A bounded load loop for fault and soak tests: `concurrency` keep-alive clients (one undici Pool, one connection
 *  each) send GETs with a fixed Host to the proxy on 127.0.0.1 until `maxRequests` were sent, `maxMs` passed or
 *  stop() is called, whichever comes first. Every outcome is counted; nothing is retried by the client, so each
 *  failure the proxy lets through is seen.
 *
 *    const load = startLoad({ port: p.proxyPort, host: 'pool.test', concurrency: 32, maxRequests: 20_000, maxMs: 30_000 })
 *    await waitFor(() => load.progress.completed >= 1000, { withinMs: 10_000, what: 'load to warm up' })
 *    const result = await load.stop()   // or await load.done; closes the clients
 *
 *  The clients' sockets are closed when the loop ends, so a test can watch the proxy's descriptors go back down. */

import { Pool } from 'undici'
import { LOOPBACK } from './backends.js'

export interface LoadOptions {
  readonly port: number
  readonly host: string
  readonly concurrency: number
  /** Upper bound on requests sent, across all clients. */
  readonly maxRequests: number
  /** Upper bound on the loop's duration; the loop ends (without failing) when it passes. */
  readonly maxMs: number
  /** Path of each request; `#` is replaced by the request's number so backends can tell requests apart. */
  readonly path?: string
  /** A request with no complete response after this long counts as a failure (default 10 s). */
  readonly requestTimeoutMs?: number
  /** Requests slower than this are counted in `slowRequests` (default: never). */
  readonly slowMs?: number
}

export interface LoadResult {
  readonly sent: number
  /** Responses with a 2xx status. */
  readonly ok: number
  /** Count per non-2xx status. */
  readonly badStatuses: Readonly<Record<number, number>>
  /** Requests that got no response (socket error, timeout). */
  readonly errors: number
  /** Up to 20 descriptions of non-2xx responses and errors, for the assertion message. */
  readonly failureSamples: readonly string[]
  readonly slowRequests: number
  readonly maxLatencyMs: number
  readonly elapsedMs: number
  /** Why the loop ended. */
  readonly endedBy: 'maxRequests' | 'maxMs' | 'stop'
}

export interface RunningLoad {
  readonly progress: { readonly sent: number; readonly completed: number; readonly failed: number }
  /** Resolves when the loop has ended and its clients are closed. */
  readonly done: Promise<LoadResult>
  /** Ends the loop after the requests in flight; resolves like `done`. */
  stop(): Promise<LoadResult>
}

const MAX_SAMPLES = 20

export function startLoad(options: LoadOptions): RunningLoad {
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000
  const slowMs = options.slowMs ?? Number.POSITIVE_INFINITY
  const pathTemplate = options.path ?? '/load/#'
  const pool = new Pool(`http://${LOOPBACK}:${options.port}`, {
    connections: options.concurrency,
    pipelining: 1,
    headersTimeout: requestTimeoutMs,
    bodyTimeout: requestTimeoutMs,
  })
  const headers = { host: options.host }
  const badStatuses: Record<number, number> = {}
  const failureSamples: string[] = []
  const progress = { sent: 0, completed: 0, failed: 0 }
  let ok = 0
  let errors = 0
  let slowRequests = 0
  let maxLatencyMs = 0
  let endedBy: LoadResult['endedBy'] | null = null
  const startedMs = performance.now()
  const deadlineMs = startedMs + options.maxMs

  const sample = (text: string): void => {
    if (failureSamples.length < MAX_SAMPLES) failureSamples.push(text)
  }
  const shouldContinue = (): boolean => {
    if (endedBy !== null) return false
    if (progress.sent >= options.maxRequests) endedBy = 'maxRequests'
    else if (performance.now() >= deadlineMs) endedBy = 'maxMs'
    return endedBy === null
  }
  const client = async (): Promise<void> => {
    while (shouldContinue()) {
      const number = progress.sent
      progress.sent += 1
      const path = pathTemplate.replace('#', String(number))
      const sentMs = performance.now()
      try {
        const res = await pool.request({ method: 'GET', path, headers })
        const body = await res.body.text()
        if (res.statusCode >= 200 && res.statusCode < 300) ok += 1
        else {
          badStatuses[res.statusCode] = (badStatuses[res.statusCode] ?? 0) + 1
          progress.failed += 1
          sample(`#${number}: ${res.statusCode} ${body.slice(0, 200)}`)
        }
      } catch (err) {
        errors += 1
        progress.failed += 1
        sample(`#${number}: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
      }
      const latencyMs = performance.now() - sentMs
      if (latencyMs > maxLatencyMs) maxLatencyMs = latencyMs
      if (latencyMs >= slowMs) slowRequests += 1
      progress.completed += 1
    }
  }
  const done = (async (): Promise<LoadResult> => {
    await Promise.all(Array.from({ length: options.concurrency }, client))
    const elapsedMs = performance.now() - startedMs
    await pool.close()
    return {
      sent: progress.sent, ok, badStatuses, errors, failureSamples, slowRequests, maxLatencyMs, elapsedMs,
      endedBy: endedBy ?? 'stop',
    }
  })()
  return {
    progress,
    done,
    stop: () => {
      endedBy ??= 'stop'
      return done
    },
  }
}

/** "1234 sent, 1230 ok, 502×3, 1 error: #12: …" for assertion messages. */
export function describeLoad(result: LoadResult): string {
  const statuses = Object.entries(result.badStatuses).map(([status, count]) => `${status}×${count}`).join(' ')
  const rps = Math.round(result.sent / (result.elapsedMs / 1000))
  return `${result.sent} sent in ${Math.round(result.elapsedMs)} ms (${rps}/s, ended by ${result.endedBy}), ${result.ok} ok` +
    (statuses === '' ? '' : `, ${statuses}`) + (result.errors === 0 ? '' : `, ${result.errors} errors`) +
    (result.failureSamples.length === 0 ? '' : `; first failures: ${result.failureSamples.join(' | ')}`)
}

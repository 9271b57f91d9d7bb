/** Plain-number counters of the data path, for /metrics (the primary turns them into `slardar_*` text) and tests:
 *  per upstream name, responses by status class (`http_requests_total`), retries by reason (`upstream_retries_total`,
 *  proxy.md §3) and per-attempt response times (`upstream_response_seconds`); plus the upgraded connections being
 *  drained (`draining_connections`, §7). Plain data so a worker can post them to the primary as they are. Owns no
 *  behaviour beyond counting. */
import type { AttemptClass } from '../checkups/index.js'

export type CodeClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx'

/** Why another attempt or a re-send happened (admin-api.md §8): every `http_NNN` class is `status`; `stale_socket`
 *  is the transparent keep-alive replay. */
export type RetryReason = 'error' | 'timeout' | 'status' | 'stale_socket'

/** `upstream_response_seconds` buckets (admin-api.md §8), upper bounds in seconds. */
export const RESPONSE_SECONDS_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** A Prometheus histogram as plain numbers: `counts[i]` observations fell in bucket `i` alone (not cumulative, so
 *  sums across workers are element-wise); the last entry is the `+Inf` overflow. */
export interface HistogramCounts {
  readonly counts: number[]
  sum: number
}

export interface UpstreamCounters {
  /** Responses finished, by the status class sent to the client (499 and 444 count as 4xx). */
  readonly requests: Record<CodeClass, number>
  readonly retries: Record<RetryReason, number>
  /** Per attempt, from its start to the end of its response (or its failure). */
  readonly responseSeconds: HistogramCounts
}

/** The `upstream` label of requests that never reached a configured upstream (admin-api.md §8). */
export const NO_UPSTREAM_LABEL = '-'

export interface ProxyCounters {
  /** By configured upstream name, created on first use; `-` for requests without one. A null-prototype record, so
   *  any upstream name is a plain key. Entries stay after their upstream is removed: counters never go backwards. */
  readonly upstreams: Record<string, UpstreamCounters>
  /** Upgraded connections open now. */
  upgradesActive: number
  /** Upgraded connections in a drain (server removed, or shutdown) now. */
  draining: number
}

export function createProxyCounters(): ProxyCounters {
  const upstreams = Object.create(null) as Record<string, UpstreamCounters>
  // Present from the start so /metrics always shows the series, even before the first request.
  upstreams[NO_UPSTREAM_LABEL] = createUpstreamCounters()
  return { upstreams, upgradesActive: 0, draining: 0 }
}

export function createUpstreamCounters(): UpstreamCounters {
  return {
    requests: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    retries: { error: 0, timeout: 0, status: 0, stale_socket: 0 },
    responseSeconds: createHistogramCounts(RESPONSE_SECONDS_BUCKETS.length),
  }
}

export function createHistogramCounts(bucketCount: number): HistogramCounts {
  return { counts: new Array<number>(bucketCount + 1).fill(0), sum: 0 }
}

/** The counters of `upstream` (a configured name): one lookup, plus one small object the first time a name is seen. */
export function upstreamCountersOf(counters: ProxyCounters, upstream: string): UpstreamCounters {
  let entry = counters.upstreams[upstream]
  if (entry === undefined) {
    entry = createUpstreamCounters()
    counters.upstreams[upstream] = entry
  }
  return entry
}

export function countResponse(counters: UpstreamCounters, status: number): void {
  const requests = counters.requests
  if (status < 200) requests['1xx'] += 1
  else if (status < 300) requests['2xx'] += 1
  else if (status < 400) requests['3xx'] += 1
  else if (status < 500) requests['4xx'] += 1
  else requests['5xx'] += 1
}

/** Counts one retry after a failed attempt of class `cls` (`success` is never retried and is ignored). */
export function countRetry(counters: UpstreamCounters, cls: AttemptClass | null): void {
  if (cls === null || cls === 'success') return
  counters.retries[cls === 'error' || cls === 'timeout' ? cls : 'status'] += 1
}

export function observeSeconds(histogram: HistogramCounts, bounds: readonly number[], seconds: number): void {
  let bucket = 0
  while (bucket < bounds.length && seconds > bounds[bucket]!) bucket += 1
  histogram.counts[bucket]! += 1
  histogram.sum += seconds
}

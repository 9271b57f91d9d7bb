/** Plain-number counters of the data path, for /metrics (the admin side turns them into prom-client series) and tests:
 *  responses by status class, retries by reason (`upstream_retries_total{reason}`, proxy.md §3), and the connections
 *  being drained (`slardar_draining_connections`, §7). Owns no behaviour beyond counting. */
import type { AttemptClass } from '../checkups/index.js'

/** Why another attempt or a re-send happened: the class of the attempt that failed, or the stale keep-alive replay. */
export type RetryReason = Exclude<AttemptClass, 'success'> | 'stale_socket'

export interface ProxyCounters {
  /** Responses finished, by the status class sent to the client (499 and 444 count as 4xx). */
  readonly requests: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number }
  readonly retries: Record<RetryReason, number>
  /** Upgraded connections open now. */
  upgradesActive: number
  /** Upgraded connections in a drain (server removed, or shutdown) now. */
  draining: number
}

export function createProxyCounters(): ProxyCounters {
  return {
    requests: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    retries: { error: 0, timeout: 0, http_500: 0, http_502: 0, http_503: 0, http_504: 0, http_429: 0, stale_socket: 0 },
    upgradesActive: 0,
    draining: 0,
  }
}

export function countResponse(counters: ProxyCounters, status: number): void {
  const requests = counters.requests
  if (status < 200) requests['1xx'] += 1
  else if (status < 300) requests['2xx'] += 1
  else if (status < 400) requests['3xx'] += 1
  else if (status < 500) requests['4xx'] += 1
  else requests['5xx'] += 1
}

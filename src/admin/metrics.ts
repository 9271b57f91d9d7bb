/** The admin process's Prometheus registry (admin-api.md §8): prom-client's default process and Node.js
 *  metrics, `slardar_admin_requests_total`, `slardar_admin_apply_seconds` and `slardar_consul_writes_total`
 *  (consul.md §12; every write goes through the admin API). Everything else on /metrics is the backend's text,
 *  appended when scraped. */

import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client'

/** Methods outside this list are counted as `other`, so a client cannot grow the label set. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])

export type ConsulWriteOp = 'set' | 'delete' | 'txn'
export type ConsulWriteResult = 'ok' | 'conflict' | 'error'

export class AdminMetrics {
  readonly registry = new Registry()
  private readonly requests: Counter<'method' | 'status'>
  private readonly applySeconds: Histogram
  private readonly consulWrites: Counter<'op' | 'result'>

  constructor(options: { collectDefaultMetrics: boolean }) {
    if (options.collectDefaultMetrics) collectDefaultMetrics({ register: this.registry })
    this.requests = new Counter({
      name: 'slardar_admin_requests_total',
      help: 'Admin API requests',
      labelNames: ['method', 'status'],
      registers: [this.registry],
    })
    this.applySeconds = new Histogram({
      name: 'slardar_admin_apply_seconds',
      help: 'Admin write until applied on this node',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    })
    this.consulWrites = new Counter({
      name: 'slardar_consul_writes_total',
      help: 'Writes to Consul KV by the admin API',
      labelNames: ['op', 'result'],
      registers: [this.registry],
    })
  }

  countRequest(method: string, status: number): void {
    this.requests.inc({ method: KNOWN_METHODS.has(method) ? method : 'other', status: String(status) })
  }

  observeApply(seconds: number): void {
    this.applySeconds.observe(seconds)
  }

  countConsulWrite(op: ConsulWriteOp, result: ConsulWriteResult): void {
    this.consulWrites.inc({ op, result })
  }
}

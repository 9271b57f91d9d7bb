/** The operations endpoints of admin-api.md §8: `/healthz`, `/readyz`, `/version`, `POST /guard/release`,
 *  `/y_nginx_status` (nginx's stub_status text, byte for byte) and `/metrics` (the admin registry followed
 *  by the backend's text). The numbers come from the backend; this module only shapes the answers. */

import { PRODUCT_VERSION, SERVER_HEADER } from '../version.js'
import type { AdminBackend } from './backend.js'
import type { AdminMetrics } from './metrics.js'
import { jsonReply, type Reply, statusReply, textReply } from './replies.js'

const HEALTHY = statusReply(200, 'ok')
const GUARD_INACTIVE = statusReply(503, 'guard is not active')
const VERSION_REPLY = jsonReply(200, { version: PRODUCT_VERSION, server: SERVER_HEADER, node: process.version })

export class OperationEndpoints {
  constructor(
    private readonly backend: AdminBackend,
    private readonly adminMetrics: AdminMetrics,
  ) {}

  /** Answers whenever the primary's event loop runs; it asks nobody. */
  healthz = (): Reply => HEALTHY

  readyz = (): Reply => {
    const readiness = this.backend.readiness()
    if (readiness.isReady) return jsonReply(200, { status: 200, msg: 'ready', source: readiness.source })
    return statusReply(503, `not ready: ${readiness.reason}`)
  }

  version = (): Reply => VERSION_REPLY

  /** Any request body is ignored. */
  releaseGuard = async (): Promise<Reply> => {
    const guard = this.backend.guard
    if (guard === null) return GUARD_INACTIVE
    const released = await guard.release()
    return statusReply(200, released === 0 ? 'nothing held' : `released ${released} held keys`)
  }

  /** nginx's ngx_http_stub_status_module format, including its trailing spaces. */
  nginxStatus = (): Reply => {
    const s = this.backend.connectionStats()
    const text =
      `Active connections: ${s.active} \n` +
      'server accepts handled requests\n' +
      ` ${s.accepts} ${s.handled} ${s.requests} \n` +
      `Reading: ${s.reading} Writing: ${s.writing} Waiting: ${s.waiting} \n`
    return textReply(200, text, 'text/plain')
  }

  metrics = async (): Promise<Reply> => {
    const own = await this.adminMetrics.registry.metrics()
    const extra = await this.backend.metricsText()
    const text = extra === '' ? own : `${own.endsWith('\n') ? own : `${own}\n`}${extra}`
    return textReply(200, text, this.adminMetrics.registry.contentType)
  }
}

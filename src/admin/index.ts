/** Public face of admin/: the `:1995` API (admin-api.md). `startAdminServer` wires the route table to the
 *  endpoint modules and listens; everything the API reads or changes comes through `AdminBackend`, which the
 *  primary implements (src/cluster/). Writes go through `backend.writer`: to Consul (consul/write.ts), or
 *  applied locally in the modes without write-through (consul/local-write.ts), with the same checks and replies. */

import type { Registry } from 'prom-client'
import type { Logger } from '../log.js'
import type { AdminBackend, AdminOptions } from './backend.js'
import { AdminMetrics } from './metrics.js'
import { OperationEndpoints } from './operations.js'
import { jsonTextReply } from './replies.js'
import { Router } from './routes.js'
import { ScriptEndpoints } from './scripts.js'
import { ScriptVersionTracker } from './script-versions.js'
import { AdminAccess, isLoopbackHost } from './security.js'
import { AdminHttpServer } from './server.js'
import { UpstreamEndpoints } from './upstreams.js'
import { WriteFlow } from './write-flow.js'

export type {
  AdminBackend, AdminOptions, ConnectionStats, DeletionGuardControl, Readiness, ScriptErrorReport,
} from './backend.js'
export { AdminListenError } from './errors.js'

export interface AdminServerParams {
  readonly options: AdminOptions
  readonly backend: AdminBackend
  readonly log: Logger
  /** prom-client's default process metrics in the admin registry (default true). Turn off when the
   *  backend's metrics text already carries them, e.g. from the cluster aggregator. */
  readonly collectDefaultMetrics?: boolean
}

export interface AdminServer {
  readonly host: string
  readonly port: number
  /** `http://host:port` */
  readonly url: string
  /** The admin's own registry (admin requests, apply times, Consul writes, default metrics). */
  readonly registry: Registry
  /** SIGHUP reload: token, protect_reads, apply_wait, allowed_hosts, the upstream defaults bodies are validated with
   *  and the stream ports apply to requests from now on. `host` and `port` stay (admin.listen is restart-only). */
  reconfigure(options: AdminOptions): void
  close(): Promise<void>
}

export async function startAdminServer(params: AdminServerParams): Promise<AdminServer> {
  const { options, backend, log } = params
  const metrics = new AdminMetrics({ collectDefaultMetrics: params.collectDefaultMetrics ?? true })
  const versions = new ScriptVersionTracker()
  versions.observe(backend.kvState())
  const unsubscribe = backend.onStateApplied((state) => versions.observe(state))
  const operations = new OperationEndpoints(backend, metrics)
  const handlersFor = (current: AdminOptions): { router: Router; access: AdminAccess } => ({
    router: buildRouter(current, backend, log, metrics, versions, operations),
    access: new AdminAccess({
      listenHost: options.host,
      port: options.port,
      token: current.token,
      protectReads: current.protectReads,
      allowedHosts: current.allowedHosts,
    }),
  })
  const { router, access } = handlersFor(options)
  const server = new AdminHttpServer(router, access, metrics, log)
  const address = await server.listen(options.host, options.port).catch((err: unknown) => {
    unsubscribe()
    throw err
  })
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  if (!isLoopbackHost(options.host) && options.token === null) {
    log.warn({ listen: `${shownHost}:${address.port}` }, 'admin API listens on a non-loopback address without admin.token: anyone who can reach it can change upstreams and scripts')
  }
  log.info({ listen: `${shownHost}:${address.port}` }, 'admin API listening')
  return {
    host: address.address,
    port: address.port,
    url: `http://${shownHost}:${address.port}`,
    registry: metrics.registry,
    reconfigure: (next) => {
      const handlers = handlersFor(next)
      server.replaceHandlers(handlers.router, handlers.access)
    },
    close: async () => {
      unsubscribe()
      await server.close()
    },
  }
}

function buildRouter(
  options: AdminOptions,
  backend: AdminBackend,
  log: Logger,
  metrics: AdminMetrics,
  versions: ScriptVersionTracker,
  operations: OperationEndpoints,
): Router {
  const flow = new WriteFlow(backend, options.applyWaitMs, metrics)
  const upstreams = new UpstreamEndpoints(backend, flow, options, log)
  const router = new Router()
    .add('/status', { GET: () => jsonTextReply(200, backend.statusBody()) })
    .add('/upstreams', { GET: upstreams.listHttp })
    .add('/upstream/', { GET: upstreams.getHttp, POST: upstreams.writeHttp, PUT: upstreams.writeHttp, DELETE: upstreams.deleteHttp })
    .add('/stream_upstreams', { GET: upstreams.listStream })
    .add('/stream_upstream/', { GET: upstreams.getStream, POST: upstreams.writeStream, PUT: upstreams.writeStream, DELETE: upstreams.deleteStream })
    .add('/guard/release', { POST: operations.releaseGuard })
    .add('/healthz', { GET: operations.healthz })
    .add('/readyz', { GET: operations.readyz })
    .add('/version', { GET: operations.version })
    .add('/metrics', { GET: operations.metrics })
    .add('/y_nginx_status', { GET: operations.nginxStatus })
  for (const runtime of ['lua', 'js'] as const) {
    const scripts = new ScriptEndpoints(runtime, options.layout, backend, flow, versions)
    router
      .add(`/${runtime}`, { GET: scripts.list, PUT: scripts.activateAll })
      .add(`/${runtime}/`, { GET: scripts.get, POST: scripts.stage, PUT: scripts.activate, DELETE: scripts.remove })
  }
  return router
}

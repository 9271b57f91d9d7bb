/** Public face of stream/, the TCP stream proxy (proxy.md §9). Other folders import from here only.
 *
 *  Wiring (the process owner, cluster/):
 *  ```ts
 *  const stream = new StreamProxy({ config, upstreams: table, planner, accessLog, log })
 *  await stream.listen()                                   // every stream.listen entry; throws ListenFailedError
 *  const { report } = primary.install(changes)             // or table.applyUpstreams(changes) in a worker
 *  stream.closeServers(report.removed)                     // connections to removed servers drain (§7)
 *  stream.keepServers(report.added)                        // ... unless their server is back before the deadline
 *  const { cut } = await stream.shutdown(drainTimeoutMs)   // SIGTERM (§10): WARN with `cut` when > 0
 *  ```
 *  `stats()` feeds `slardar_draining_connections{kind="stream"}`, `stream_connections_total` and
 *  `stream_bytes_total` (admin-api.md, Metrics). */
export { StreamProxy } from './proxy.js'
export type { ListenAddress, StreamPortStats, StreamProxyConfig, StreamProxyOptions, StreamStats } from './proxy.js'
export type { UpstreamSource } from './connection.js'
export type { AccessLogSink, StreamLogRecord, StreamStatus } from './access-log.js'
export { ListenFailedError, STREAM_ERROR_CODES } from './errors.js'
export type { StreamErrorCode } from './errors.js'

/** Public face of the HTTP data path (proxy.md §1–§8, §10): other folders import from here only.
 *  `HttpProxy` is the whole of it; the rest are the types its options and figures are made of. */
export { HttpProxy } from './server.js'
export type { HttpProxyOptions, ProxyStats } from './server.js'
export type { UpstreamLookup } from './exchange.js'
export type { ProxyConfig } from './options.js'
export type { CodeClass, HistogramCounts, ProxyCounters, RetryReason, UpstreamCounters } from './counters.js'
export { createHistogramCounts, createUpstreamCounters, observeSeconds, RESPONSE_SECONDS_BUCKETS } from './counters.js'
export type { HttpAccessRecord } from './access-record.js'
export { GENERATED_ERRORS, PROXY_ERROR_CODES, ProxyListenError } from './errors.js'
export type { GeneratedError } from './errors.js'

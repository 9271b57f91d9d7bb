/** The proxy's settings: the `proxy` section of slardar.json5 as config/ validated it (seconds, bytes, `{host, port}`),
 *  compiled once into the milliseconds and flags the data path reads. proxy/ may not import config/ (style.md), so
 *  the input is declared here structurally; `Config['proxy']` satisfies it as is. Owns no defaults: config/schema.ts
 *  is the single list of options. Per-upstream overrides (timeouts, tries, keepalive) live on the Upstream. */

/** The `proxy.*` options this module reads, as config/ produces them. */
export interface ProxyConfig {
  readonly listen: readonly { readonly host: string; readonly port: number }[]
  readonly default_upstream: string | null
  readonly client_send_timeout: number
  readonly client_header_timeout: number
  readonly client_body_timeout: number
  readonly client_keepalive_timeout: number
  readonly upgrade_idle_timeout: number
  readonly upstream_idle_timeout: number
  readonly drain_timeout: number
  readonly client_max_body_size: number
  readonly retry_body_limit: number
  readonly max_header_size: number
  readonly server_header: boolean
  readonly xff: boolean
  readonly x_forwarded_proto: boolean
  readonly x_forwarded_host: boolean
  readonly x_real_ip: boolean
  readonly request_id: boolean
}

export interface ProxySettings {
  readonly listen: readonly { readonly host: string; readonly port: number }[]
  readonly defaultUpstream: string | null
  readonly clientSendTimeoutMs: number
  readonly clientHeaderTimeoutMs: number
  readonly clientBodyTimeoutMs: number
  readonly clientKeepaliveTimeoutMs: number
  /** 0 = never. */
  readonly upgradeIdleTimeoutMs: number
  readonly upstreamIdleTimeoutMs: number
  readonly drainTimeoutMs: number
  readonly clientMaxBodyBytes: number
  readonly retryBodyLimitBytes: number
  readonly maxHeaderBytes: number
  readonly hasServerHeader: boolean
  readonly hasXff: boolean
  readonly hasXForwardedProto: boolean
  readonly hasXForwardedHost: boolean
  readonly hasXRealIp: boolean
  readonly hasRequestId: boolean
}

export function buildProxySettings(config: ProxyConfig): ProxySettings {
  const ms = (seconds: number): number => Math.round(seconds * 1000)
  return Object.freeze({
    listen: config.listen,
    defaultUpstream: config.default_upstream,
    clientSendTimeoutMs: ms(config.client_send_timeout),
    clientHeaderTimeoutMs: ms(config.client_header_timeout),
    clientBodyTimeoutMs: ms(config.client_body_timeout),
    clientKeepaliveTimeoutMs: ms(config.client_keepalive_timeout),
    upgradeIdleTimeoutMs: ms(config.upgrade_idle_timeout),
    upstreamIdleTimeoutMs: ms(config.upstream_idle_timeout),
    drainTimeoutMs: ms(config.drain_timeout),
    clientMaxBodyBytes: config.client_max_body_size,
    retryBodyLimitBytes: config.retry_body_limit,
    maxHeaderBytes: config.max_header_size,
    hasServerHeader: config.server_header,
    hasXff: config.xff,
    hasXForwardedProto: config.x_forwarded_proto,
    hasXForwardedHost: config.x_forwarded_host,
    hasXRealIp: config.x_real_ip,
    hasRequestId: config.request_id,
  })
}

/** The single list of slardar.json5 options (config.md): each with its default, its check and a
 *  one-line description. Nothing else in the code base declares an option or a default. */

import cron from 'node-cron'
import { opt, type SchemaTree, type ValueOf } from './options.js'
import { type Parsed, show } from './values.js'

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = (problem: string): Parsed<never> => ({ ok: false, problem })

const PREFIX_SEGMENT = /^[-_a-zA-Z0-9.]+$/
const PREFIX_SEGMENT_TEXT = 'must be a single key segment matching [-_a-zA-Z0-9.]+'

export interface ConsulServer {
  readonly host: string
  readonly port: number
}

function checkConsulServers(value: unknown): Parsed<readonly ConsulServer[]> {
  if (!Array.isArray(value)) return bad(`expected an array of {host, port}, got ${show(value)}`)
  const servers: ConsulServer[] = []
  for (const [i, item] of value.entries()) {
    const entry = item as { host?: unknown; port?: unknown } | null
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return bad(`[${i}] must be an object {host, port}`)
    if (typeof entry.host !== 'string' || entry.host === '') return bad(`[${i}].host must be a non-empty string`)
    if (typeof entry.port !== 'number' || !Number.isInteger(entry.port) || entry.port < 1 || entry.port > 65535) {
      return bad(`[${i}].port must be an integer 1..65535, got ${show(entry.port)}`)
    }
    const unknown = Object.keys(entry).find((key) => key !== 'host' && key !== 'port')
    if (unknown !== undefined) return bad(`[${i}].${unknown}: unknown option`)
    servers.push(Object.freeze({ host: entry.host, port: entry.port }))
  }
  return ok(Object.freeze(servers))
}

function checkKeyPrefix(value: unknown): Parsed<string> {
  if (typeof value !== 'string') return bad(`expected a string such as "config/slardar/", got ${show(value)}`)
  if (value.startsWith('/')) return bad(`must not start with "/", got ${show(value)}`)
  if (value !== '' && !value.endsWith('/')) return bad(`must end with "/", got ${show(value)} (did you mean "${value}/"?)`)
  return ok(value)
}

function checkWorkers(value: unknown): Parsed<'auto' | number> {
  if (value === 'auto') return ok('auto')
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return ok(value)
  return bad(`expected "auto" or an integer >= 0, got ${show(value)}`)
}

function checkCron(value: unknown): Parsed<string | null> {
  if (value === null) return ok(null)
  if (typeof value !== 'string' || !cron.validate(value)) {
    return bad(`expected a cron expression such as "0 */10 * * * *" or null (off), got ${show(value)}`)
  }
  return ok(value)
}

function checkSharedDicts(value: unknown): Parsed<Readonly<Record<string, number>>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return bad(`expected an object {"<dict>": <max entries>}, got ${show(value)}`)
  }
  const dicts: Record<string, number> = {}
  for (const [name, size] of Object.entries(value)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return bad(`.${name}: dict names must be Lua identifiers`)
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) return bad(`.${name} must be an integer >= 1, got ${show(size)}`)
    dicts[name] = size
  }
  return ok(Object.freeze(dicts))
}

function checkAccessLog(value: unknown): Parsed<string> {
  return typeof value === 'string' && value !== '' ? ok(value) : bad(`expected "stdout", "off" or a file path, got ${show(value)}`)
}

/** Static upstreams stay raw JSON here: config/ imports nothing from src/, so checkups validates them
 *  at start and in check-config, with paths `upstreams.<name>...`. */
function checkStaticUpstreams(value: unknown): Parsed<Readonly<Record<string, unknown>>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return bad(`expected an object {"<name>": <upstream>}, got ${show(value)}`)
  }
  return ok(Object.freeze({ ...value }))
}

const NEXT_UPSTREAM = ['error', 'timeout', 'http_500', 'http_502', 'http_503', 'http_504', 'http_429', 'non_idempotent'] as const
export type NextUpstreamCondition = (typeof NEXT_UPSTREAM)[number]
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const

export const schema = {
  global: {
    checkup_timer_interval: opt.durationSec(5, 's between heartbeat round starts', { positive: true }),
    checkup_timer_overtime: opt.durationSec(60, 's without a finished heartbeat round before /status calls the timer dead', { positive: true }),
    default_heartbeat_enable: opt.boolean(true, 'heartbeat on for upstreams that do not set `enable`'),
    heartbeat_concurrency: opt.integer(1024, 1, 'bound on concurrent heartbeat probes (sockets)'),
    default_max_fails: opt.integer(0, 0, 'passive checks off unless an upstream or server sets max_fails'),
    conf_hash: opt.nullableString('free-form string shown in /status'),
    no_store: opt.boolean(false, 'start with an empty table when Consul and the snapshot are both unavailable'),
    resolve_interval: opt.durationSec(30, 's between re-resolutions of upstream hostnames', { positive: true }),
    shd_config_timer_interval: opt.durationSec(1, "Slardar's; accepted and ignored (updates are pushed over IPC)"),
  },
  consul: {
    enable: opt.boolean(true, 'read upstreams and scripts from Consul KV'),
    address: opt.hostPort('127.0.0.1:8500', 'Consul HTTP address; CONSUL_HTTP_ADDR overrides'),
    servers: opt.custom<readonly ConsulServer[]>([], 'Consul servers tried in order; when non-empty, used instead of address', checkConsulServers),
    scheme: opt.oneOf('http', ['http', 'https'], 'scheme for Consul calls'),
    token: opt.nullableString('ACL token sent as X-Consul-Token; CONSUL_HTTP_TOKEN overrides', { isSecret: true }),
    datacenter: opt.nullableString('datacenter sent as dc on every call; null = the agent\'s own'),
    timeout: opt.durationSec(5, 's, bound on non-blocking Consul calls', { positive: true }),
    wait: opt.durationSec(300, 'blocking query wait of the watch', { positive: true, maxSec: 600, maxText: '"10m"' }),
    config_key_prefix: opt.custom('config/slardar/', 'root of every KV key read', checkKeyPrefix),
    upstreams_prefix: opt.string('http_upstreams', 'HTTP upstreams folder below the prefix', PREFIX_SEGMENT, PREFIX_SEGMENT_TEXT),
    stream_upstreams_prefix: opt.string('stream_upstreams', 'stream upstreams folder below the prefix', PREFIX_SEGMENT, PREFIX_SEGMENT_TEXT),
    lua_prefix: opt.string('lua', 'Lua scripts folder below the prefix', PREFIX_SEGMENT, PREFIX_SEGMENT_TEXT),
    js_prefix: opt.string('js', 'JS plugins folder below the prefix', PREFIX_SEGMENT, PREFIX_SEGMENT_TEXT),
    config_cache_enable: opt.boolean(true, 'cache dynamic config reads while the snapshot is not authoritative'),
    config_positive_ttl: opt.durationSec(10, 's a found dynamic key is cached (non-authoritative snapshot only)'),
    config_negative_ttl: opt.durationSec(5, 's a missing dynamic key is cached (non-authoritative snapshot only)'),
    write_through: opt.boolean(true, 'admin writes go to Consul with check-and-set'),
  },
  proxy: {
    listen: opt.hostPortList(['127.0.0.1:8080'], 'HTTP proxy addresses'),
    tries: opt.integer(2, 1, 'attempts per request'),
    try_timeout: opt.durationSec(5, 's after the first attempt when no new attempt starts; 0 = unlimited'),
    next_upstream: opt.listOf<NextUpstreamCondition>(['error', 'timeout', 'http_502'], NEXT_UPSTREAM, 'outcomes that are retried on another server'),
    connect_timeout: opt.durationSec(3, 's, TCP connect to a server', { positive: true }),
    send_timeout: opt.durationSec(60, 's, longest gap between two writes to a server', { positive: true }),
    read_timeout: opt.durationSec(60, 's, longest gap between two reads from a server', { positive: true }),
    client_send_timeout: opt.durationSec(60, 's, longest gap between two writes to a client', { positive: true }),
    client_header_timeout: opt.durationSec(60, 's to receive a whole request head', { positive: true }),
    client_body_timeout: opt.durationSec(60, 's, longest gap between two reads of a request body', { positive: true }),
    client_keepalive_timeout: opt.durationSec(15, 's an idle client keep-alive connection stays open', { positive: true }),
    upgrade_idle_timeout: opt.durationSec(600, 's an idle upgraded (WebSocket) connection stays open; 0 = never closed'),
    upstream_idle_timeout: opt.durationSec(4, 's an idle upstream socket stays pooled; keep below backends\' keep-alive', { positive: true }),
    keepalive: opt.integer(64, 0, 'idle sockets kept per server, per worker'),
    client_max_body_size: opt.sizeBytes(1024 ** 3, 'larger request bodies get 413'),
    retry_body_limit: opt.sizeBytes(64 * 1024, 'request bodies up to this size are buffered for retries'),
    max_header_size: opt.sizeBytes(16 * 1024, 'request line plus headers; larger gets 431'),
    server_header: opt.boolean(true, 'send Server: slardar/<major.minor>'),
    xff: opt.boolean(true, 'append the client address to X-Forwarded-For'),
    x_forwarded_proto: opt.boolean(true, 'set X-Forwarded-Proto when absent'),
    x_forwarded_host: opt.boolean(true, 'set X-Forwarded-Host when absent'),
    x_real_ip: opt.boolean(false, 'set X-Real-IP to the client address'),
    request_id: opt.boolean(true, 'add X-Request-Id when absent'),
    default_upstream: opt.nullableString('upstream used when no upstream matches the Host'),
    drain_timeout: opt.durationSec(60, 's allowed for draining connections on shutdown or server removal'),
  },
  stream: {
    listen: opt.hostPortList([], 'TCP stream listener addresses; the port names the stream upstream'),
    tries: opt.integer(3, 1, 'connect attempts per client connection'),
    idle_timeout: opt.durationSec(600, 's without bytes in either direction before a stream closes', { positive: true }),
  },
  admin: {
    enable: opt.boolean(true, 'serve the admin and /status API'),
    listen: opt.hostPort('127.0.0.1:1995', 'admin and /status address'),
    token: opt.nullableString('shared secret for writes (and reads with protect_reads); SLARDAR_ADMIN_TOKEN overrides', { minLength: 16, isSecret: true }),
    protect_reads: opt.boolean(false, 'reads need the token too'),
    apply_wait: opt.durationSec(2, 's an admin write waits to see its change applied before answering 202'),
    allowed_hosts: opt.stringList([], 'extra Host names accepted on a loopback admin listener'),
  },
  workers: opt.custom<'auto' | number>(0, 'proxy worker processes: 0 = one process, "auto" = one per core, or N', checkWorkers),
  snapshot: {
    path: opt.string('./data/snapshot.json', 'last-known-good snapshot file'),
    enable: opt.boolean(true, 'write and boot from the snapshot file'),
  },
  guard: {
    max_removal_pct: opt.number(50, 0, 100, 'a change removing more than this % of upstreams is held'),
    hold_seconds: opt.durationSec(30, 's a guarded removal is held before it is re-checked and applied'),
    enable: opt.boolean(true, 'hold mass deletions'),
  },
  scripts: {
    timeout_ms: opt.integer(50, 1, 'CPU budget in ms for one synchronous run of script code'),
    async_timeout_ms: opt.integer(5000, 1, 'wall-clock limit in ms for one hook call'),
    enable_lua: opt.boolean(true, 'run Lua scripts'),
    enable_js: opt.boolean(true, 'run JS plugins'),
    regex_cache: opt.integer(1024, 0, 'translated ngx.re patterns cached per worker'),
    shared_dicts: opt.custom<Readonly<Record<string, number>>>({}, '{"<dict>": <max entries>} for ngx.shared.<dict>', checkSharedDicts),
  },
  jobs: {
    full_resync: opt.custom<string | null>('0 */10 * * * *', 'node-cron schedule of the full Consul resync; null = off', checkCron),
    snapshot_housekeeping: opt.custom<string | null>(
      '0 */15 * * * *',
      'node-cron schedule of the snapshot check: remove temp files of crashed writers, rewrite a missing or damaged file; null = off',
      checkCron,
    ),
  },
  log: {
    level: opt.oneOf('info', LOG_LEVELS, 'app log level'),
    access: opt.custom('stdout', 'access log: "stdout", "off" or a file path', checkAccessLog),
    pretty: opt.boolean(false, 'human-readable logs (dev)'),
  },
  upstreams: opt.custom<Readonly<Record<string, unknown>>>({}, 'static upstreams, same JSON as KV values; the file wins on a name clash', checkStaticUpstreams),
} satisfies SchemaTree

export type Config = ValueOf<typeof schema>

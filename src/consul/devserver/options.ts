/** DevServerOptions (consul.md §15) → validated settings with every default filled in. Option names are Consul's
 *  where Consul has one, with a unit suffix for times. A bad value is a DevServerError naming the option. */

import type { TestToken } from './acl.js'
import { invalidOption } from './errors.js'

export interface DevServerLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface DevServerOptions {
  /** "host:port" (default "127.0.0.1:0": a free port on loopback). */
  listen?: string
  /** Default "dc1"; any other `?dc` answers 500 `No path to datacenter`. */
  datacenter?: string
  /** Default "node1". */
  node_name?: string
  /** Largest KV value in bytes (default 524288). */
  kv_max_value_size?: number
  /** Largest txn body in bytes (default 524288). */
  txn_max_req_len?: number
  /** Most ops per txn (default 128). */
  txn_max_ops?: number
  /** Blocking wait when `wait` is absent or <= 0 (default 300000 = 5 min). */
  default_query_time_ms?: number
  /** Cap on `wait` (default 600000 = 10 min). */
  max_query_time_ms?: number
  /** Lowest session TTL accepted (default 10000; tests use 1000). */
  session_ttl_min_ms?: number
  /** Cap on a session's LockDelay (default 60000). */
  lock_delay_max_ms?: number
  /** Management token; set = ACL mode, default deny (default null: ACLs off). */
  acl_token?: string | null
  /** Extra test tokens for ACL mode: key read/write prefixes. */
  acl_tokens?: readonly TestToken[]
  /** Accept any key (Consul ≤ 1.21.4 behaviour). */
  disable_kv_key_validation?: boolean
  /** Also reject a leading "/" and empty or "." segments (stricter than any Consul). */
  strict_keys?: boolean
  /** First value of the global index counter (default 10). */
  start_index?: number | bigint
  /** Seed of the blocking-query jitter (default random). */
  jitter_seed?: number
  /** Reap tombstones this long after the delete (default 0 = never; reapTombstones() forces it). */
  tombstone_ttl_ms?: number
  /** Persistence directory (default null: in memory only). */
  data?: string | null
  /** Default: silent. */
  logger?: DevServerLogger
}

export interface ResolvedOptions {
  readonly host: string
  readonly port: number
  readonly datacenter: string
  readonly nodeName: string
  readonly kvMaxValueSize: number
  readonly txnMaxReqLen: number
  readonly txnMaxOps: number
  readonly defaultQueryTimeMs: number
  readonly maxQueryTimeMs: number
  readonly sessionTtlMinMs: number
  readonly lockDelayMaxMs: number
  readonly aclToken: string | null
  readonly aclTokens: readonly TestToken[]
  readonly isKeyValidationDisabled: boolean
  readonly isStrictKeys: boolean
  readonly startIndex: bigint
  readonly jitterSeed: number | undefined
  readonly tombstoneTtlMs: number
  readonly dataDir: string | null
  readonly logger: DevServerLogger
}

const SILENT_LOGGER: DevServerLogger = { info: () => {}, warn: () => {}, error: () => {} }

function parseListen(listen: string): { readonly host: string; readonly port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen)
  const port = match === null ? NaN : Number(match[3])
  if (match === null || port > 65535) {
    throw invalidOption('listen', '"host:port" with a port 0..65535 (e.g. "127.0.0.1:8500")', listen)
  }
  const host = match[1] ?? match[2] ?? ''
  return { host: host === '' ? '0.0.0.0' : host, port }
}

function integer(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < min) throw invalidOption(name, `an integer >= ${min}`, value)
  return value
}

function text(name: string, value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value === '') throw invalidOption(name, 'a non-empty string', value)
  return value
}

function tokens(list: readonly TestToken[] | undefined, aclToken: string | null): readonly TestToken[] {
  if (list === undefined || list.length === 0) return []
  if (aclToken === null) throw invalidOption('acl_tokens', 'used together with acl_token (ACL mode)', list.map((t) => t.accessor))
  list.forEach((token, i) => {
    const isValid =
      typeof token.secret === 'string' &&
      token.secret !== '' &&
      typeof token.accessor === 'string' &&
      Array.isArray(token.read) &&
      Array.isArray(token.write)
    if (!isValid) throw invalidOption(`acl_tokens[${i}]`, '{secret, accessor, read: [prefix], write: [prefix]}', token)
  })
  return list
}

export function resolveOptions(options: DevServerOptions): ResolvedOptions {
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:0')
  const aclToken = options.acl_token ?? null
  if (aclToken === '') throw invalidOption('acl_token', 'a non-empty token or null', aclToken)
  const startIndex = options.start_index ?? 10
  if (typeof startIndex === 'number' ? !Number.isSafeInteger(startIndex) || startIndex < 1 : startIndex < 1n) {
    throw invalidOption('start_index', 'an integer >= 1', String(startIndex))
  }
  const defaultQueryTimeMs = integer('default_query_time_ms', options.default_query_time_ms, 300_000, 1)
  const maxQueryTimeMs = integer('max_query_time_ms', options.max_query_time_ms, 600_000, 1)
  const jitterSeed = options.jitter_seed
  if (jitterSeed !== undefined && !Number.isSafeInteger(jitterSeed)) throw invalidOption('jitter_seed', 'an integer', jitterSeed)
  return {
    host,
    port,
    datacenter: text('datacenter', options.datacenter, 'dc1'),
    nodeName: text('node_name', options.node_name, 'node1'),
    kvMaxValueSize: integer('kv_max_value_size', options.kv_max_value_size, 524_288, 1),
    txnMaxReqLen: integer('txn_max_req_len', options.txn_max_req_len, 524_288, 1),
    txnMaxOps: integer('txn_max_ops', options.txn_max_ops, 128, 1),
    defaultQueryTimeMs,
    maxQueryTimeMs,
    sessionTtlMinMs: integer('session_ttl_min_ms', options.session_ttl_min_ms, 10_000, 1),
    lockDelayMaxMs: integer('lock_delay_max_ms', options.lock_delay_max_ms, 60_000, 0),
    aclToken,
    aclTokens: tokens(options.acl_tokens, aclToken),
    isKeyValidationDisabled: options.disable_kv_key_validation ?? false,
    isStrictKeys: options.strict_keys ?? false,
    startIndex: BigInt(startIndex),
    jitterSeed,
    tombstoneTtlMs: integer('tombstone_ttl_ms', options.tombstone_ttl_ms, 0, 0),
    dataDir: options.data ?? null,
    logger: options.logger ?? SILENT_LOGGER,
  }
}

/** Slardar's upstream JSON → a validated, normalised, frozen `UpstreamDefinition` (upstreams.md §1). Owns the schema
 *  and the exact user-facing messages of §1.4: every problem, in document order, as `<path> <problem>`, joined by
 *  `"; "` and prefixed with the key. Never logs and never throws on bad input: the caller (Consul watcher, admin API,
 *  config loader) decides what to do with the errors and warnings it gets back. */
import JSON5 from 'json5'
import {
  BALANCE_MODES, DEFAULT_FAIL_TIMEOUT_SEC, DEFAULT_HASH_HEADER, DEFAULT_PROBE_TIMEOUT_SEC, DEFAULT_WEIGHT,
  PROBE_TYPES, UPSTREAM_DEFAULTS,
} from './model.js'
import type {
  BalanceMode, HttpProbeOptions, LevelDefinition, ProbeType, ServerDefinition, UpstreamDefaults,
  UpstreamDefinition,
} from './model.js'
import { canonicalHost, serverId } from './server-id.js'

export interface ParseOptions {
  /** A `stream_upstreams/<port>` value: only `rr`/`ip_hash`, and `stream.tries` / `try_timeout` 0 defaults. */
  readonly stream?: boolean
}

export type ParseResult =
  | { readonly ok: true; readonly upstream: UpstreamDefinition; readonly warnings: readonly string[] }
  | {
      readonly ok: false
      /** Each problem without the key: `servers[1].port must be an integer 1..65535`. */
      readonly errors: readonly string[]
      /** What the user reads: `<key>: <errors joined by "; ">`. */
      readonly message: string
      readonly warnings: readonly string[]
    }

/** `input` is JSON5 text (a string, or UTF-8 bytes as read from Consul) or an already parsed value (admin API body,
 *  config file). `key` prefixes every message: `http_upstreams/api` or a config-file path. */
export function parseUpstreamJson(
  key: string,
  input: unknown,
  defaults: UpstreamDefaults = UPSTREAM_DEFAULTS,
  options: ParseOptions = {},
): ParseResult {
  const parser = new UpstreamParser(key, defaults, options.stream === true)
  return parser.parse(input)
}

const MODE_ALIASES: Readonly<Record<string, BalanceMode>> = { '': 'rr', wrr: 'rr' }
const STREAM_MODES: readonly BalanceMode[] = ['rr', 'ip_hash']
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const STATUS_CODE_KEY = /^[1-5][0-9][0-9]$/
const STATUS_CLASS = /^[1-5]xx$/
const PROBE_PATH = /^\/[\x21-\x7e]*$/
const LINE_BREAK = /[\r\n]/

type JsonObject = Record<string, unknown>

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isIntegerIn(value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max
}

function isPositiveNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
}

/** One parse: collects problems in the order it meets them, which is document order because it walks each
 *  object's own keys as written (JSON.parse and JSON5 keep that order for non-numeric keys). */
class UpstreamParser {
  readonly #errors: string[] = []
  readonly #warnings: string[] = []

  constructor(
    private readonly key: string,
    private readonly defaults: UpstreamDefaults,
    private readonly isStream: boolean,
  ) {}

  parse(input: unknown): ParseResult {
    const value = this.#decode(input)
    if (this.#errors.length > 0) return this.#failure()
    if (!isObject(value)) {
      this.#errors.push('value must be an object')
      return this.#failure()
    }
    const definition = this.#upstream(value)
    if (this.#errors.length > 0) return this.#failure()
    return { ok: true, upstream: deepFreeze(definition), warnings: this.#warnings }
  }

  #decode(input: unknown): unknown {
    let text: string
    if (typeof input === 'string') {
      text = input
    } else if (input instanceof Uint8Array) {
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(input)
      } catch {
        this.#errors.push('value is not valid UTF-8')
        return undefined
      }
    } else {
      return input
    }
    try {
      return JSON5.parse(text)
    } catch (err) {
      const reason = err instanceof Error ? err.message.replace(/^JSON5: /, '') : String(err)
      this.#errors.push(`value is not valid JSON: ${reason}`)
      return undefined
    }
  }

  #failure(): ParseResult {
    return {
      ok: false,
      errors: this.#errors,
      message: `${this.key}: ${this.#errors.join('; ')}`,
      warnings: this.#warnings,
    }
  }

  #unknown(path: string): void {
    this.#warnings.push(`${this.key}: ${path} is not a known field and is ignored`)
  }

  #upstream(value: JsonObject): UpstreamDefinition {
    const d = this.defaults
    const hasServers = Object.hasOwn(value, 'servers')
    const hasCluster = Object.hasOwn(value, 'cluster')
    if (hasServers && hasCluster) this.#errors.push('use either servers or cluster, not both')
    else if (!hasServers && !hasCluster) this.#errors.push('servers or cluster is required')

    const out = {
      stream: this.isStream,
      enable: d.heartbeatEnable,
      typ: 'general' as ProbeType,
      timeout: DEFAULT_PROBE_TIMEOUT_SEC,
      http_opts: null as HttpProbeOptions | null,
      sensibility: 1,
      rise: 1,
      protected: true,
      mode: 'rr' as BalanceMode,
      hash_header: DEFAULT_HASH_HEADER,
      try: this.isStream ? d.streamTries : d.tries,
      try_timeout: this.isStream ? 0 : d.tryTimeoutSec,
      keepalive: d.keepalive,
      connect_timeout: d.connectTimeoutSec,
      send_timeout: d.sendTimeoutSec,
      read_timeout: d.readTimeoutSec,
      cluster: [] as LevelDefinition[],
    }
    const seen = new Map<string, string>()

    for (const field of Object.keys(value)) {
      const v = value[field]
      switch (field) {
        case 'servers':
          if (!hasCluster) out.cluster = this.#serversForm(v, seen)
          break
        case 'cluster':
          if (!hasServers) out.cluster = this.#clusterForm(v, seen)
          break
        case 'enable':
        case 'protected':
          if (typeof v === 'boolean') out[field] = v
          else this.#errors.push(`${field} must be a boolean`)
          break
        case 'typ':
          if (typeof v === 'string' && (PROBE_TYPES as readonly string[]).includes(v)) {
            out.typ = v as ProbeType
            if (v === 'redis' || v === 'mysql') {
              this.#warnings.push(`${this.key}: typ ${v} is probed as a TCP connect check (${v} checks are not supported)`)
            }
          } else {
            this.#errors.push(`typ must be one of ${PROBE_TYPES.join(', ')}`)
          }
          break
        case 'mode':
          this.#mode(v, out)
          break
        case 'timeout':
        case 'connect_timeout':
        case 'send_timeout':
        case 'read_timeout':
          if (isPositiveNumber(v)) out[field] = v
          else this.#errors.push(`${field} must be a number > 0`)
          break
        case 'try_timeout':
          if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out.try_timeout = v
          else this.#errors.push('try_timeout must be a number >= 0')
          break
        case 'sensibility':
        case 'rise':
        case 'try':
          if (isIntegerIn(v, 1)) out[field] = v
          else this.#errors.push(`${field} must be an integer >= 1`)
          break
        case 'keepalive':
          if (isIntegerIn(v, 0)) out.keepalive = v
          else this.#errors.push('keepalive must be an integer >= 0')
          break
        case 'hash_header':
          if (typeof v === 'string' && TOKEN.test(v)) out.hash_header = v
          else this.#errors.push('hash_header must be a header name')
          break
        case 'http_opts':
          out.http_opts = this.#httpOpts(v)
          break
        default:
          this.#unknown(field)
      }
    }
    return out
  }

  #mode(v: unknown, out: { mode: BalanceMode }): void {
    const mode = typeof v === 'string' ? (MODE_ALIASES[v] ?? v) : null
    const allowed: readonly string[] = this.isStream ? STREAM_MODES : BALANCE_MODES
    if (mode !== null && allowed.includes(mode)) {
      out.mode = mode as BalanceMode
    } else if (this.isStream) {
      this.#errors.push(`mode must be one of ${STREAM_MODES.join(', ')} for a stream upstream`)
    } else {
      this.#errors.push(`mode must be one of ${BALANCE_MODES.join(', ')}`)
    }
  }

  #serversForm(v: unknown, seen: Map<string, string>): LevelDefinition[] {
    if (!Array.isArray(v)) {
      this.#errors.push('servers must be an array')
      return []
    }
    return [{ servers: this.#servers(v, 'servers', seen) }]
  }

  #clusterForm(v: unknown, seen: Map<string, string>): LevelDefinition[] {
    if (!Array.isArray(v)) {
      this.#errors.push('cluster must be an array of levels')
      return []
    }
    const levels: LevelDefinition[] = []
    v.forEach((level: unknown, l) => {
      const path = `cluster[${l}]`
      // A level that is not an object has no servers array either; one message covers both (upstreams.md §1.4).
      if (!isObject(level) || !Array.isArray(level['servers'])) {
        this.#errors.push(`${path}.servers must be an array`)
        if (isObject(level)) this.#unknownFields(level, path, ['servers'])
        return
      }
      const servers: ServerDefinition[] = []
      for (const field of Object.keys(level)) {
        if (field === 'servers') servers.push(...this.#servers(level['servers'] as unknown[], `${path}.servers`, seen))
        else this.#unknown(`${path}.${field}`)
      }
      levels.push({ servers })
    })
    return levels
  }

  #unknownFields(value: JsonObject, path: string, known: readonly string[]): void {
    for (const field of Object.keys(value)) if (!known.includes(field)) this.#unknown(`${path}.${field}`)
  }

  #servers(list: readonly unknown[], path: string, seen: Map<string, string>): ServerDefinition[] {
    const servers: ServerDefinition[] = []
    list.forEach((server, i) => {
      const parsed = this.#server(server, `${path}[${i}]`, seen)
      if (parsed !== null) servers.push(parsed)
    })
    return servers
  }

  #server(value: unknown, path: string, seen: Map<string, string>): ServerDefinition | null {
    if (!isObject(value)) {
      this.#errors.push(`${path} must be an object`)
      return null
    }
    const before = this.#errors.length
    // A missing field has no place in the document; it is reported first, where its object starts.
    if (!Object.hasOwn(value, 'host')) this.#errors.push(`${path}.host is required`)
    if (!Object.hasOwn(value, 'port')) this.#errors.push(`${path}.port is required`)
    let host: string | null = null
    let port: number | null = null
    const out = {
      weight: DEFAULT_WEIGHT,
      max_fails: this.defaults.maxFails,
      fail_timeout: DEFAULT_FAIL_TIMEOUT_SEC,
      down: false,
    }
    for (const field of Object.keys(value)) {
      const v = value[field]
      switch (field) {
        case 'host': {
          const canonical = typeof v === 'string' ? canonicalHost(v) : null
          if (canonical === null) this.#errors.push(`${path}.host must be an IP address or a hostname`)
          else host = canonical.host
          break
        }
        case 'port':
          if (isIntegerIn(v, 1, 65535)) port = v
          else this.#errors.push(`${path}.port must be an integer 1..65535`)
          break
        case 'weight':
          if (isIntegerIn(v, 1)) out.weight = v
          else this.#errors.push(`${path}.weight must be an integer >= 1`)
          break
        case 'max_fails':
          if (isIntegerIn(v, 0)) out.max_fails = v
          else this.#errors.push(`${path}.max_fails must be an integer >= 0`)
          break
        case 'fail_timeout':
          if (isPositiveNumber(v)) out.fail_timeout = v
          else this.#errors.push(`${path}.fail_timeout must be a number > 0`)
          break
        case 'down':
          if (typeof v === 'boolean') out.down = v
          else this.#errors.push(`${path}.down must be a boolean`)
          break
        default:
          this.#unknown(`${path}.${field}`)
      }
    }
    if (host === null || port === null) return null
    const id = serverId(host, port)
    const first = seen.get(id)
    if (first !== undefined) {
      this.#errors.push(`${path} duplicates ${first} (${id})`)
      return null
    }
    seen.set(id, path)
    if (this.#errors.length > before) return null
    return { id, host, port, ...out }
  }

  #httpOpts(value: unknown): HttpProbeOptions | null {
    if (!isObject(value)) {
      this.#errors.push('http_opts must be an object')
      return null
    }
    const out: {
      query: string | null; path: string | null; method: string; headers: Record<string, string>
      statuses: Record<string, boolean> | null; expect: (number | string)[] | null
    } = { query: null, path: null, method: 'GET', headers: {}, statuses: null, expect: null }
    for (const field of Object.keys(value)) {
      const v = value[field]
      const path = `http_opts.${field}`
      switch (field) {
        case 'query':
          if (typeof v === 'string' && v.length > 0) out.query = v
          else this.#errors.push(`${path} must be a non-empty string`)
          break
        case 'path':
          if (typeof v === 'string' && PROBE_PATH.test(v)) out.path = v
          else this.#errors.push(`${path} must be a path starting with /`)
          break
        case 'method':
          if (typeof v === 'string' && TOKEN.test(v)) out.method = v
          else this.#errors.push(`${path} must be an HTTP method token`)
          break
        case 'headers':
          out.headers = this.#probeHeaders(v, path)
          break
        case 'statuses':
          out.statuses = this.#statuses(v, path)
          break
        case 'expect':
          out.expect = this.#expect(v, path)
          break
        default:
          this.#unknown(path)
      }
    }
    const has = (field: string): boolean => Object.hasOwn(value, field)
    if (has('query') && (has('path') || has('method') || has('headers'))) {
      this.#errors.push('http_opts: use either query or path/method/headers')
    }
    if (has('statuses') && has('expect')) this.#errors.push('http_opts: use either statuses or expect')
    return out
  }

  #probeHeaders(value: unknown, path: string): Record<string, string> {
    const headers: Record<string, string> = {}
    if (!isObject(value)) {
      this.#errors.push(`${path} must be an object of header names to strings`)
      return headers
    }
    for (const name of Object.keys(value)) {
      const v = value[name]
      if (!TOKEN.test(name)) this.#errors.push(`${path}.${name} is not a valid header name`)
      else if (typeof v !== 'string' || LINE_BREAK.test(v)) this.#errors.push(`${path}.${name} must be a string without line breaks`)
      else headers[name] = v
    }
    return headers
  }

  #statuses(value: unknown, path: string): Record<string, boolean> | null {
    if (!isObject(value)) {
      this.#errors.push(`${path} must be an object mapping status codes to booleans`)
      return null
    }
    const statuses: Record<string, boolean> = {}
    for (const code of Object.keys(value)) {
      const v = value[code]
      if (!STATUS_CODE_KEY.test(code)) this.#errors.push(`${path}.${code} must be a status code 100..599`)
      else if (typeof v !== 'boolean') this.#errors.push(`${path}.${code} must be a boolean`)
      else statuses[code] = v
    }
    return statuses
  }

  #expect(value: unknown, path: string): (number | string)[] | null {
    if (!Array.isArray(value) || value.length === 0) {
      this.#errors.push(`${path} must be a non-empty array of status codes or classes`)
      return null
    }
    const expect: (number | string)[] = []
    value.forEach((v: unknown, i) => {
      if (isIntegerIn(v, 100, 599)) expect.push(v)
      else if (typeof v === 'string' && STATUS_CLASS.test(v.toLowerCase())) expect.push(v.toLowerCase())
      else this.#errors.push(`${path}[${i}] must be a status code 100..599 or a class "1xx".."5xx"`)
    })
    return expect
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

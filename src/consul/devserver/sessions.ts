/** Sessions (consul.md §21): parsing a `/v1/session/create` body with Consul's defaults, limits and texts, the
 *  session table with its own index, and the lock-delay windows that invalidation leaves on released keys.
 *  Pure; the TTL timers and the invalidation itself (which edits KV) belong to state.ts. */

import { ApiError } from './errors.js'
import { formatGoDuration, parseGoDuration } from './go-compat.js'
import { goField, goJsonTypeName, goTypeError, isJsonObject, parseJson, type JsonOut } from './json.js'

export type SessionBehavior = 'release' | 'delete'

export interface ServiceCheckRef {
  readonly id: string
  readonly namespace: string
}

/** What a create request asks for, validated. */
export interface SessionRequest {
  readonly name: string
  readonly node: string
  readonly lockDelayNs: bigint
  readonly behavior: SessionBehavior
  /** As given ("" = none), echoed back in session objects. */
  readonly ttl: string
  readonly ttlMs: number
  readonly nodeChecks: readonly string[]
  readonly serviceChecks: readonly ServiceCheckRef[]
}

export interface Session extends SessionRequest {
  readonly id: string
  readonly createIndex: bigint
  readonly modifyIndex: bigint
}

export interface SessionLimits {
  readonly nodeName: string
  readonly sessionTtlMinMs: number
  readonly lockDelayMaxMs: number
}

export const SERF_HEALTH_CHECK = 'serfHealth'
const DEFAULT_LOCK_DELAY_NS = 15_000_000_000n
const SESSION_TTL_MAX_NS = 24n * 3_600_000_000_000n
/** Consul reads a LockDelay below this many nanoseconds as seconds (clients send `15` meaning 15 s). */
const LOCK_DELAY_SECONDS_THRESHOLD_NS = 1000n

function decodeFailed(detail: string): ApiError {
  return new ApiError(400, `Request decode failed: ${detail}`)
}

function readString(body: Record<string, unknown>, field: string): string | undefined {
  const value = goField(body, field)
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw decodeFailed(goTypeError(value, `Session.${field}`, 'string'))
  return value
}

function readStringList(body: Record<string, unknown>, field: string): string[] | undefined {
  const value = goField(body, field)
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value)) throw decodeFailed(goTypeError(value, `Session.${field}`, '[]string'))
  return value.map((item) => {
    if (typeof item !== 'string') throw decodeFailed(goTypeError(item, `Session.${field}`, 'string'))
    return item
  })
}

function readServiceChecks(body: Record<string, unknown>): ServiceCheckRef[] {
  const value = goField(body, 'ServiceChecks')
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw decodeFailed(goTypeError(value, 'Session.ServiceChecks', '[]structs.ServiceCheck'))
  return value.map((item) => {
    if (!isJsonObject(item)) throw decodeFailed(goTypeError(item, 'Session.ServiceChecks', 'structs.ServiceCheck'))
    const id = goField(item, 'ID')
    const namespace = goField(item, 'Namespace')
    if (id !== undefined && typeof id !== 'string') throw decodeFailed(goTypeError(id, 'Session.ServiceChecks.ID', 'string'))
    return { id: id ?? '', namespace: typeof namespace === 'string' ? namespace : '' }
  })
}

/** LockDelay as Consul's Session.UnmarshalJSON reads it: a duration string or nanoseconds, tiny values as seconds. */
function readLockDelayNs(body: Record<string, unknown>, lockDelayMaxMs: number): bigint {
  const value = goField(body, 'LockDelay')
  let ns: bigint
  if (value === undefined || value === null) return DEFAULT_LOCK_DELAY_NS
  if (typeof value === 'string') {
    const parsed = parseGoDuration(value)
    if (!parsed.ok) throw decodeFailed(parsed.message)
    ns = parsed.ns
  } else if (typeof value === 'number') {
    ns = BigInt(Math.trunc(value))
  } else if (typeof value === 'bigint') {
    ns = value
  } else {
    throw decodeFailed(goTypeError(value, 'Session.LockDelay', 'time.Duration'))
  }
  if (ns < LOCK_DELAY_SECONDS_THRESHOLD_NS) ns *= 1_000_000_000n
  const maxNs = BigInt(lockDelayMaxMs) * 1_000_000n
  if (ns > maxNs) return maxNs
  return ns < 0n ? 0n : ns
}

/** Parses and validates a create body (empty = all defaults). Throws ApiError with Consul's status and text. */
export function parseSessionRequest(bodyText: string, limits: SessionLimits): SessionRequest {
  let body: Record<string, unknown> = {}
  if (bodyText.trim() !== '') {
    const parsed = parseJson(bodyText)
    if (!parsed.ok) throw decodeFailed(parsed.message)
    if (!isJsonObject(parsed.value)) {
      throw decodeFailed(`json: cannot unmarshal ${goJsonTypeName(parsed.value)} into Go value of type structs.Session`)
    }
    body = parsed.value
  }
  const lockDelayNs = readLockDelayNs(body, limits.lockDelayMaxMs)
  const name = readString(body, 'Name') ?? ''
  const node = readString(body, 'Node') ?? limits.nodeName
  const behaviorText = readString(body, 'Behavior') ?? ''
  const ttl = readString(body, 'TTL') ?? ''
  const nodeChecks = readStringList(body, 'NodeChecks') ?? readStringList(body, 'Checks') ?? [SERF_HEALTH_CHECK]
  const serviceChecks = readServiceChecks(body)

  let behavior: SessionBehavior
  if (behaviorText === '' || behaviorText === 'release') behavior = 'release'
  else if (behaviorText === 'delete') behavior = 'delete'
  else throw new ApiError(500, `Invalid Behavior setting '${behaviorText}'`)

  let ttlMs = 0
  if (ttl !== '') {
    const parsed = parseGoDuration(ttl)
    if (!parsed.ok) throw new ApiError(500, `Session TTL '${ttl}' invalid: ${parsed.message}`)
    const minNs = BigInt(limits.sessionTtlMinMs) * 1_000_000n
    if (parsed.ns !== 0n && (parsed.ns < minNs || parsed.ns > SESSION_TTL_MAX_NS)) {
      throw new ApiError(
        500,
        `Invalid Session TTL '${parsed.ns}', must be between [${formatGoDuration(minNs)}=${formatGoDuration(SESSION_TTL_MAX_NS)}]`,
      )
    }
    ttlMs = Number(parsed.ns / 1_000_000n)
  }
  if (node !== limits.nodeName) throw new ApiError(500, 'Missing node registration')
  return { name, node, lockDelayNs, behavior, ttl, ttlMs, nodeChecks, serviceChecks }
}

/** memdb's UUID index check; a malformed id is a 500 in Consul, an unknown one is not. Null when well formed. */
export function uuidFormatProblem(id: string): string | null {
  if (id.length !== 36) return 'uuid string is wrong length'
  if (id[8] !== '-' || id[13] !== '-' || id[18] !== '-' || id[23] !== '-') return 'uuid is improperly formatted'
  if (!/^[0-9a-fA-F]{32}$/.test(id.replace(/-/g, ''))) return 'uuid contains invalid hex characters'
  return null
}

export function sessionToJson(session: Session): JsonOut {
  return {
    ID: session.id,
    Name: session.name,
    Node: session.node,
    LockDelay: session.lockDelayNs,
    Behavior: session.behavior,
    TTL: session.ttl,
    NodeChecks: session.nodeChecks,
    ServiceChecks:
      session.serviceChecks.length === 0
        ? null
        : session.serviceChecks.map((check) => ({ ID: check.id, Namespace: check.namespace })),
    CreateIndex: session.createIndex,
    ModifyIndex: session.modifyIndex,
  }
}

/** The session table. Ids are UUIDs, matched case-insensitively as memdb's UUID index does. */
export class SessionTable {
  private readonly sessions = new Map<string, Session>()
  private indexValue = 0n

  /** Index of the last session create or invalidation; 0 when none. */
  get index(): bigint {
    return this.indexValue
  }

  get size(): number {
    return this.sessions.size
  }

  get(id: string): Session | null {
    return this.sessions.get(id.toLowerCase()) ?? null
  }

  list(): Session[] {
    return [...this.sessions.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  add(session: Session): void {
    this.sessions.set(session.id.toLowerCase(), session)
    this.indexValue = session.createIndex
  }

  remove(id: string, index: bigint): void {
    if (this.sessions.delete(id.toLowerCase())) this.indexValue = index
  }

  /** Sessions that depend on this check and must go when it turns critical or disappears. */
  dependingOn(checkId: string): Session[] {
    return this.list().filter(
      (session) => session.nodeChecks.includes(checkId) || session.serviceChecks.some((check) => check.id === checkId),
    )
  }
}

/** Lock-delay windows: after a session is invalidated, its keys refuse every acquire for its LockDelay. */
export class LockDelays {
  private readonly untilMsByKey = new Map<string, number>()

  start(key: string, untilMs: number): void {
    this.untilMsByKey.set(key, Math.max(untilMs, this.untilMsByKey.get(key) ?? 0))
  }

  isDelayed(key: string, nowMs: number): boolean {
    const untilMs = this.untilMsByKey.get(key)
    if (untilMs === undefined) return false
    if (untilMs > nowMs) return true
    this.untilMsByKey.delete(key)
    return false
  }
}

/** The minimal catalog (consul.md §16, §23, §26): one node, the built-in `consul` service, services registered
 *  through the agent API, and their TTL checks; answers for `/v1/health/service/<name>` and
 *  `/v1/catalog/services`. One index covers all of it. Pure: TTL timers belong to state.ts. */

import { ApiError } from './errors.js'
import { parseGoDuration } from './go-compat.js'
import { goField, goTypeError, isJsonObject, parseJson, type JsonOut } from './json.js'
import { SERF_HEALTH_CHECK } from './sessions.js'

export type CheckStatus = 'passing' | 'warning' | 'critical'

export interface ServiceDefinition {
  readonly id: string
  readonly name: string
  readonly tags: readonly string[]
  /** "" means "use the node's address", as in Consul. */
  readonly address: string
  readonly port: number
  readonly meta: Readonly<Record<string, string>>
}

export interface CheckDefinition {
  readonly id: string
  readonly name: string
  readonly notes: string
  readonly status: CheckStatus
  readonly ttlMs: number
}

export interface ServiceRegistration {
  readonly service: ServiceDefinition
  readonly checks: readonly CheckDefinition[]
}

interface ServiceRecord extends ServiceDefinition {
  readonly createIndex: bigint
  readonly modifyIndex: bigint
}

export interface CheckRecord extends CheckDefinition {
  readonly serviceId: string
  readonly output: string
  readonly createIndex: bigint
  readonly modifyIndex: bigint
}

export interface NodeIdentity {
  readonly nodeName: string
  readonly nodeId: string
  readonly datacenter: string
  readonly version: string
}

const NODE_ADDRESS = '127.0.0.1'
const CHECK_STATUSES: readonly string[] = ['passing', 'warning', 'critical']
/** Check kinds the real agent runs itself; the embedded server only has TTL checks (§26). */
const ACTIVE_CHECK_FIELDS = [
  'HTTP',
  'TCP',
  'UDP',
  'GRPC',
  'H2Ping',
  'Args',
  'Script',
  'AliasNode',
  'AliasService',
  'DockerContainerID',
]

function badRequest(text: string): ApiError {
  return new ApiError(400, text)
}

function decodeFailed(detail: string): ApiError {
  return new ApiError(400, `Request decode failed: ${detail}`)
}

function optionalString(object: Record<string, unknown>, field: string, struct: string): string {
  const value = goField(object, field)
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string') throw decodeFailed(goTypeError(value, `${struct}.${field}`, 'string'))
  return value
}

function parseCheck(
  raw: unknown,
  position: number,
  count: number,
  service: { readonly id: string; readonly name: string },
): CheckDefinition {
  if (!isJsonObject(raw)) throw decodeFailed(goTypeError(raw, 'ServiceDefinition.Check', 'structs.CheckType'))
  const active = ACTIVE_CHECK_FIELDS.find((field) => goField(raw, field) !== undefined && goField(raw, field) !== null)
  if (active !== undefined) {
    throw badRequest(`Invalid check: the embedded Consul server runs TTL checks only, not ${active} checks`)
  }
  const ttlText = optionalString(raw, 'TTL', 'CheckType')
  const ttl = parseGoDuration(ttlText)
  if (ttlText === '' || !ttl.ok || ttl.ns <= 0n) throw badRequest('Invalid check: TTL must be > 0 for TTL checks')
  const statusText = optionalString(raw, 'Status', 'CheckType')
  if (statusText !== '' && !CHECK_STATUSES.includes(statusText)) {
    throw badRequest(`Status for checks must 'passing', 'warning', 'critical'`)
  }
  let id = optionalString(raw, 'CheckID', 'CheckType') || optionalString(raw, 'ID', 'CheckType')
  if (id === '') id = count > 1 ? `service:${service.id}:${position + 1}` : `service:${service.id}`
  return {
    id,
    name: optionalString(raw, 'Name', 'CheckType') || `Service '${service.name}' check`,
    notes: optionalString(raw, 'Notes', 'CheckType'),
    status: (statusText || 'critical') as CheckStatus,
    ttlMs: Math.max(1, Number(ttl.ns / 1_000_000n)),
  }
}

/** Parses a `/v1/agent/service/register` body (Go decoding: field names case-insensitive). */
export function parseServiceRegistration(bodyText: string): ServiceRegistration {
  const parsed = parseJson(bodyText.trim() === '' ? '{}' : bodyText)
  if (!parsed.ok) throw decodeFailed(parsed.message)
  if (!isJsonObject(parsed.value)) throw decodeFailed(goTypeError(parsed.value, 'ServiceDefinition', 'structs.ServiceDefinition'))
  const body = parsed.value
  const name = optionalString(body, 'Name', 'ServiceDefinition')
  const id = optionalString(body, 'ID', 'ServiceDefinition') || name
  const tagsRaw = goField(body, 'Tags') ?? []
  if (!Array.isArray(tagsRaw) || tagsRaw.some((tag) => typeof tag !== 'string')) {
    throw decodeFailed(goTypeError(tagsRaw, 'ServiceDefinition.Tags', '[]string'))
  }
  const portRaw = goField(body, 'Port') ?? 0
  if (typeof portRaw !== 'number' || !Number.isInteger(portRaw)) {
    throw decodeFailed(goTypeError(portRaw, 'ServiceDefinition.Port', 'int'))
  }
  const metaRaw = goField(body, 'Meta') ?? {}
  if (!isJsonObject(metaRaw) || Object.values(metaRaw).some((value) => typeof value !== 'string')) {
    throw decodeFailed(goTypeError(metaRaw, 'ServiceDefinition.Meta', 'map[string]string'))
  }
  if (name === '') throw badRequest('Missing service name')
  const single = goField(body, 'Check')
  const many = goField(body, 'Checks')
  if (many !== undefined && many !== null && !Array.isArray(many)) {
    throw decodeFailed(goTypeError(many, 'ServiceDefinition.Checks', 'structs.CheckTypes'))
  }
  const rawChecks = [...(single === undefined || single === null ? [] : [single]), ...((many as unknown[] | null) ?? [])]
  const service: ServiceDefinition = {
    id,
    name,
    tags: tagsRaw as string[],
    address: optionalString(body, 'Address', 'ServiceDefinition'),
    port: portRaw,
    meta: { ...(metaRaw as Record<string, string>) },
  }
  return { service, checks: rawChecks.map((raw, i) => parseCheck(raw, i, rawChecks.length, service)) }
}

export interface HealthFilter {
  readonly isPassingOnly: boolean
  readonly tags: readonly string[]
}

export class Catalog {
  private readonly services = new Map<string, ServiceRecord>()
  private readonly checks = new Map<string, CheckRecord>()
  private indexValue: bigint

  /** The node, its serfHealth check and the `consul` service exist from `bootIndex` on. */
  constructor(
    private readonly node: NodeIdentity,
    private readonly bootIndex: bigint,
  ) {
    this.indexValue = bootIndex
    this.services.set('consul', {
      id: 'consul',
      name: 'consul',
      tags: [],
      address: '',
      port: 8300,
      meta: {},
      createIndex: bootIndex,
      modifyIndex: bootIndex,
    })
  }

  get index(): bigint {
    return this.indexValue
  }

  getCheck(id: string): CheckRecord | null {
    return this.checks.get(id) ?? null
  }

  /** Status of a node check (only serfHealth, always passing) or a service check; null when unknown. */
  checkStatus(id: string): CheckStatus | null {
    if (id === SERF_HEALTH_CHECK) return 'passing'
    return this.checks.get(id)?.status ?? null
  }

  /** Adds or replaces a service and its checks at `index`; returns the ids of checks that went away. */
  register(registration: ServiceRegistration, index: bigint): string[] {
    const { service } = registration
    const previous = this.services.get(service.id)
    const removed = this.checksOf(service.id).filter((id) => !registration.checks.some((check) => check.id === id))
    for (const id of removed) this.checks.delete(id)
    this.services.set(service.id, { ...service, createIndex: previous?.createIndex ?? index, modifyIndex: index })
    for (const check of registration.checks) {
      this.checks.set(check.id, { ...check, serviceId: service.id, output: '', createIndex: index, modifyIndex: index })
    }
    this.indexValue = index
    return removed
  }

  /** Removes a service and its checks; null when the id is unknown, else the removed check ids. */
  deregister(serviceId: string, index: bigint): string[] | null {
    if (!this.services.has(serviceId) || serviceId === 'consul') return null
    const removed = this.checksOf(serviceId)
    for (const id of removed) this.checks.delete(id)
    this.services.delete(serviceId)
    this.indexValue = index
    return removed
  }

  /** Sets a check's status and output; false (and no index) when nothing changed. */
  updateCheck(id: string, status: CheckStatus, output: string, index: bigint): boolean {
    const check = this.checks.get(id)
    if (check === undefined || (check.status === status && check.output === output)) return false
    this.checks.set(id, { ...check, status, output, modifyIndex: index })
    this.indexValue = index
    return true
  }

  /** `/v1/catalog/services`: service name -> tags (first seen first, no repeats), names sorted. */
  servicesSummary(): Record<string, string[]> {
    const summary: Record<string, string[]> = {}
    for (const service of this.sortedServices()) {
      const tags = (summary[service.name] ??= [])
      for (const tag of service.tags) if (!tags.includes(tag)) tags.push(tag)
    }
    return Object.fromEntries(Object.entries(summary).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  }

  /** `/v1/health/service/<name>`: one entry per instance with Node, Service and all its checks. */
  health(serviceName: string, filter: HealthFilter): JsonOut[] {
    const entries: JsonOut[] = []
    for (const service of this.sortedServices()) {
      if (service.name !== serviceName) continue
      if (!filter.tags.every((tag) => service.tags.includes(tag))) continue
      const serviceChecks = this.checksOf(service.id).map((id) => this.checkJson(this.checks.get(id) as CheckRecord, service))
      const checks = [this.serfHealthJson(), ...serviceChecks]
      if (filter.isPassingOnly && checks.some((check) => (check as { Status: string }).Status !== 'passing')) continue
      entries.push({ Node: this.nodeJson(), Service: this.serviceJson(service), Checks: checks })
    }
    return entries
  }

  private sortedServices(): ServiceRecord[] {
    return [...this.services.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  private checksOf(serviceId: string): string[] {
    return [...this.checks.values()].filter((check) => check.serviceId === serviceId).map((check) => check.id).sort()
  }

  private nodeJson(): JsonOut {
    return {
      ID: this.node.nodeId,
      Node: this.node.nodeName,
      Address: NODE_ADDRESS,
      Datacenter: this.node.datacenter,
      TaggedAddresses: { lan: NODE_ADDRESS, lan_ipv4: NODE_ADDRESS, wan: NODE_ADDRESS, wan_ipv4: NODE_ADDRESS },
      Meta: { 'consul-network-segment': '', 'consul-version': this.node.version },
      CreateIndex: this.bootIndex,
      ModifyIndex: this.bootIndex,
    }
  }

  private serviceJson(service: ServiceRecord): JsonOut {
    return {
      ID: service.id,
      Service: service.name,
      Tags: service.tags,
      Address: service.address,
      Meta: service.meta,
      Port: service.port,
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
      CreateIndex: service.createIndex,
      ModifyIndex: service.modifyIndex,
    }
  }

  private serfHealthJson(): JsonOut {
    return {
      Node: this.node.nodeName,
      CheckID: SERF_HEALTH_CHECK,
      Name: 'Serf Health Status',
      Status: 'passing',
      Notes: '',
      Output: 'Agent alive and reachable',
      ServiceID: '',
      ServiceName: '',
      ServiceTags: [],
      Type: '',
      Definition: {},
      CreateIndex: this.bootIndex,
      ModifyIndex: this.bootIndex,
    }
  }

  private checkJson(check: CheckRecord, service: ServiceRecord): JsonOut {
    return {
      Node: this.node.nodeName,
      CheckID: check.id,
      Name: check.name,
      Status: check.status,
      Notes: check.notes,
      Output: check.output,
      ServiceID: service.id,
      ServiceName: service.name,
      ServiceTags: service.tags,
      Type: 'ttl',
      Definition: {},
      CreateIndex: check.createIndex,
      ModifyIndex: check.modifyIndex,
    }
  }
}

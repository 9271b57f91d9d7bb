/** The non-KV read and agent endpoints (consul.md §16, §23): `/v1/status/*` (no token ever needed),
 *  `/v1/agent/self`, service register/deregister, TTL check pass/warn/fail, `/v1/catalog/services` and
 *  `/v1/health/service/<name>` (blocking on the catalog index, `?passing`, `?tag`). Status and agent answers carry
 *  no index headers, which is how the client's watch() knows it cannot watch them. */

import { permissionDenied, type AclPolicy } from './acl.js'
import { parseServiceRegistration, type CheckStatus, type NodeIdentity } from './catalog.js'
import { ApiError } from './errors.js'
import { goQuote, parseGoBool } from './go-compat.js'
import { answerBlocking, bodyTooLarge, emptyReply, jsonReply, queryMeta, type Exchange, type Route } from './http.js'
import type { DevState } from './state.js'

export interface AgentApiSettings {
  readonly state: DevState
  readonly acl: AclPolicy
  readonly node: NodeIdentity
  readonly maxBodyBytes: number
}

/** The single server's raft address; the embedded server is always the leader (§26). */
export const LEADER_ADDRESS = '127.0.0.1:8300'
const BUILD_DATE = '2025-01-01T00:00:00Z'
const REGISTER_DOCS_URL = 'https://developer.hashicorp.com/consul/api-docs/agent/service'

const CHECK_VERBS: ReadonlyMap<string, CheckStatus> = new Map([
  ['pass', 'passing'],
  ['warn', 'warning'],
  ['fail', 'critical'],
])

function withConsistency(index: bigint): Record<string, string> {
  return { ...queryMeta(index), 'X-Consul-Effective-Consistency': 'leader' }
}

export function agentRoutes(settings: AgentApiSettings): Route[] {
  const { state, acl, node } = settings

  function requireKnown(exchange: Exchange, permission: string, resource: string): void {
    const caller = exchange.caller()
    if (!acl.isKnown(caller)) throw permissionDenied(caller, permission, resource)
  }

  const checkRoutes: Route[] = [...CHECK_VERBS].map(([verb, status]) => ({
    path: `/v1/agent/check/${verb}/`,
    methods: ['PUT'],
    hasQueryOptions: false,
    handler: (exchange: Exchange, checkId: string) => {
      requireKnown(exchange, 'node:write', node.nodeName)
      if (!state.updateCheck(checkId, status, exchange.get('note'))) {
        throw new ApiError(404, `Unknown check ID ${goQuote(checkId)}. Ensure that the check ID is passed, not the check name.`)
      }
      return emptyReply(200)
    },
  }))

  return [
    {
      path: '/v1/status/leader',
      methods: ['GET'],
      hasQueryOptions: false,
      handler: (exchange) => jsonReply(LEADER_ADDRESS, exchange.isPretty),
    },
    {
      path: '/v1/status/peers',
      methods: ['GET'],
      hasQueryOptions: false,
      handler: (exchange) => jsonReply([LEADER_ADDRESS], exchange.isPretty),
    },
    {
      path: '/v1/agent/self',
      methods: ['GET'],
      hasQueryOptions: false,
      handler: (exchange) => {
        requireKnown(exchange, 'agent:read', node.nodeName)
        const self = {
          Config: {
            Datacenter: node.datacenter,
            PrimaryDatacenter: node.datacenter,
            NodeName: node.nodeName,
            NodeID: node.nodeId,
            Revision: 'embedded',
            Server: true,
            Version: node.version,
            BuildDate: BUILD_DATE,
          },
          DebugConfig: {},
          Coord: null,
          Member: {
            Name: node.nodeName,
            Addr: '127.0.0.1',
            Port: 8301,
            Tags: {},
            Status: 1,
            ProtocolMin: 1,
            ProtocolMax: 5,
            ProtocolCur: 2,
            DelegateMin: 2,
            DelegateMax: 5,
            DelegateCur: 4,
          },
          Stats: {},
          Meta: {},
        }
        return jsonReply(self, exchange.isPretty)
      },
    },
    {
      path: '/v1/agent/service/register',
      methods: ['PUT'],
      hasQueryOptions: false,
      handler: async (exchange) => {
        const read = await exchange.readBody(settings.maxBodyBytes)
        if (!read.ok) throw bodyTooLarge(read.declaredBytes, settings.maxBodyBytes, REGISTER_DOCS_URL)
        const registration = parseServiceRegistration(read.body.toString('utf8'))
        requireKnown(exchange, 'service:write', registration.service.name)
        state.registerService(registration)
        return emptyReply(200)
      },
    },
    {
      path: '/v1/agent/service/deregister/',
      methods: ['PUT'],
      hasQueryOptions: false,
      handler: (exchange, serviceId) => {
        requireKnown(exchange, 'service:write', serviceId)
        if (!state.deregisterService(serviceId)) {
          throw new ApiError(
            404,
            `Unknown service ID ${goQuote(serviceId)}. Ensure that the service ID is passed, not the service name.`,
          )
        }
        return emptyReply(200)
      },
    },
    ...checkRoutes,
    {
      path: '/v1/catalog/services',
      methods: ['GET'],
      hasQueryOptions: true,
      handler: (exchange) => {
        exchange.requireLocalDatacenter()
        const isVisible = acl.isKnown(exchange.caller())
        return answerBlocking(exchange, state.hub, { kind: 'catalog' }, () => {
          const index = state.catalog.index
          const summary = isVisible ? state.catalog.servicesSummary() : {}
          return { index, reply: jsonReply(summary, exchange.isPretty, withConsistency(index)) }
        })
      },
    },
    {
      path: '/v1/health/service/',
      methods: ['GET'],
      hasQueryOptions: true,
      handler: (exchange, serviceName) => {
        if (serviceName === '') throw new ApiError(400, 'Missing service name')
        let isPassingOnly = false
        if (exchange.has('passing')) {
          const value = exchange.get('passing')
          const parsed = value === '' ? true : parseGoBool(value)
          if (parsed === null) throw new ApiError(400, 'Invalid value for ?passing')
          isPassingOnly = parsed
        }
        const tags = exchange.query.get('tag') ?? []
        exchange.requireLocalDatacenter()
        const isVisible = acl.isKnown(exchange.caller())
        return answerBlocking(exchange, state.hub, { kind: 'catalog' }, () => {
          const index = state.catalog.index
          const entries = isVisible ? state.catalog.health(serviceName, { isPassingOnly, tags }) : []
          return { index, reply: jsonReply(entries, exchange.isPretty, withConsistency(index)) }
        })
      },
    },
  ]
}

/** `/v1/session/*` (consul.md §16, §21): create/destroy/renew (PUT, no index headers) and info/list/node (GET,
 *  blocking on the session table's index). In ACL mode the anonymous token may not write sessions and reads an
 *  empty list, as with Consul's default-deny filtering; any known token may do both (acl.ts). */

import { permissionDenied, type AclPolicy } from './acl.js'
import { ApiError } from './errors.js'
import { answerBlocking, bodyTooLarge, jsonReply, queryMeta, type Exchange, type Reply, type Route } from './http.js'
import { parseSessionRequest, sessionToJson, uuidFormatProblem, type Session, type SessionLimits } from './sessions.js'
import type { DevState } from './state.js'

export interface SessionApiSettings {
  readonly state: DevState
  readonly acl: AclPolicy
  readonly limits: SessionLimits
  /** Bound for a create body; Consul has none, but an unbounded read is a way to exhaust memory. */
  readonly maxBodyBytes: number
}

const BODY_LIMIT_DOCS_URL = 'https://developer.hashicorp.com/consul/api-docs/session'

/** Empty id → 400; malformed → 500 with memdb's text, as Consul's session lookups fail. */
function requireSessionId(id: string): string {
  if (id === '') throw new ApiError(400, 'Missing session')
  const problem = uuidFormatProblem(id)
  if (problem !== null) throw new ApiError(500, `failed session lookup: index error: ${problem}`)
  return id
}

export function sessionRoutes(settings: SessionApiSettings): Route[] {
  const { state, acl } = settings
  const nodeName = settings.limits.nodeName

  function authorizeWrite(exchange: Exchange): void {
    exchange.requireLocalDatacenter()
    const caller = exchange.caller()
    if (!acl.isKnown(caller)) throw permissionDenied(caller, 'session:write', nodeName)
  }

  function listing(exchange: Exchange, select: () => Session[]): Promise<Reply | null> {
    exchange.requireLocalDatacenter()
    const isVisible = acl.isKnown(exchange.caller())
    return answerBlocking(exchange, state.hub, { kind: 'sessions' }, () => {
      const index = state.sessions.index
      const sessions = isVisible ? select() : []
      return { index, reply: jsonReply(sessions.map(sessionToJson), exchange.isPretty, queryMeta(index)) }
    })
  }

  return [
    {
      path: '/v1/session/create',
      methods: ['PUT'],
      hasQueryOptions: false,
      handler: async (exchange) => {
        const read = await exchange.readBody(settings.maxBodyBytes)
        if (!read.ok) throw bodyTooLarge(read.declaredBytes, settings.maxBodyBytes, BODY_LIMIT_DOCS_URL)
        const request = parseSessionRequest(read.body.toString('utf8'), settings.limits)
        authorizeWrite(exchange)
        const session = state.createSession(request)
        return jsonReply({ ID: session.id }, exchange.isPretty)
      },
    },
    {
      path: '/v1/session/destroy/',
      methods: ['PUT'],
      hasQueryOptions: false,
      handler: (exchange, id) => {
        requireSessionId(id)
        authorizeWrite(exchange)
        state.destroySession(id)
        return jsonReply(true, exchange.isPretty)
      },
    },
    {
      path: '/v1/session/renew/',
      methods: ['PUT'],
      hasQueryOptions: false,
      handler: (exchange, id) => {
        requireSessionId(id)
        authorizeWrite(exchange)
        const session = state.renewSession(id)
        if (session === null) throw new ApiError(404, `Session id '${id}' not found`)
        return jsonReply([sessionToJson(session)], exchange.isPretty)
      },
    },
    {
      path: '/v1/session/info/',
      methods: ['GET'],
      hasQueryOptions: true,
      handler: (exchange, id) => {
        requireSessionId(id)
        return listing(exchange, () => {
          const session = state.sessions.get(id)
          return session === null ? [] : [session]
        })
      },
    },
    {
      path: '/v1/session/list',
      methods: ['GET'],
      hasQueryOptions: true,
      handler: (exchange) => listing(exchange, () => state.sessions.list()),
    },
    {
      path: '/v1/session/node/',
      methods: ['GET'],
      hasQueryOptions: true,
      handler: (exchange, node) => {
        if (node === '') throw new ApiError(400, 'Missing node name')
        return listing(exchange, () => state.sessions.list().filter((session) => session.node === node))
      },
    },
  ]
}

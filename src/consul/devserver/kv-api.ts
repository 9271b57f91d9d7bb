/** `/v1/kv/<key>` (consul.md §17–§19, §23): Consul's KV HTTP handlers. GET answers keys, recurse or one key
 *  (`raw` included) as blocking reads, with ACL filtering; PUT and DELETE validate in Consul's order (missing key,
 *  conflicting flags, flags/cas syntax, body size), then datacenter, token and permission, then apply through
 *  state.ts. Rules of each operation live in kv-ops.ts. */

import { permissionDenied, type AclPolicy } from './acl.js'
import { ApiError } from './errors.js'
import { encodeGoQuery, parseGoUint64 } from './go-compat.js'
import { answerBlocking, bodyTooLarge, emptyReply, jsonReply, queryMeta, type Exchange, type Reply } from './http.js'
import { keyProblem, type KeyRules } from './key-rules.js'
import type { KvOp } from './kv-ops.js'
import type { DevState } from './state.js'
import { kvEntryToJson } from './store.js'

export interface KvApiSettings {
  readonly state: DevState
  readonly acl: AclPolicy
  readonly keyRules: KeyRules
  readonly kvMaxValueSize: number
}

const KV_SIZE_DOCS_URL = 'https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size'

/** Consul's conflictingFlags: more than one of `flags` present → 400 with the whole query, keys sorted. */
function rejectConflictingFlags(exchange: Exchange, flags: readonly string[]): void {
  if (flags.filter((flag) => exchange.has(flag)).length > 1) {
    throw new ApiError(400, `Conflicting flags: ${encodeGoQuery(exchange.query)}`)
  }
}

/** strconv.ParseUint of a query parameter; Consul returns its error as a 500. */
function readUint64Param(exchange: Exchange, name: string): bigint {
  const parsed = parseGoUint64(exchange.get(name))
  if (!parsed.ok) throw new ApiError(500, parsed.message)
  return parsed.value
}

function missingKey(): ApiError {
  return new ApiError(400, 'Missing key name')
}

export function createKvHandler(settings: KvApiSettings): (exchange: Exchange, key: string) => Promise<Reply | null> {
  const { state, acl } = settings

  function listKeys(exchange: Exchange, prefix: string): Promise<Reply | null> {
    // A historic Consul typo: `seperator` is still read, and `separator` wins when both are given.
    const separator = exchange.has('separator') ? exchange.get('separator') : exchange.get('seperator')
    exchange.requireLocalDatacenter()
    const caller = exchange.caller()
    return answerBlocking(exchange, state.hub, { kind: 'prefix', prefix }, () => {
      const all = state.kv.listKeys(prefix, separator)
      const keys = all.filter((key) => acl.canReadKey(caller, key))
      const index = state.kv.indexOfPrefix(prefix)
      const headers = filteredMeta(index, keys.length < all.length && caller.kind !== 'anonymous')
      // No keys is a 404, except for the root, which Consul answers with an empty list.
      if (keys.length === 0 && prefix !== '') return { index, reply: emptyReply(404, headers) }
      return { index, reply: jsonReply(keys, exchange.isPretty, headers) }
    })
  }

  function listEntries(exchange: Exchange, prefix: string): Promise<Reply | null> {
    exchange.requireLocalDatacenter()
    const caller = exchange.caller()
    return answerBlocking(exchange, state.hub, { kind: 'prefix', prefix }, () => {
      const all = state.kv.list(prefix)
      const entries = all.filter((entry) => acl.canReadKey(caller, entry.key))
      const index = state.kv.indexOfPrefix(prefix)
      const headers = filteredMeta(index, entries.length < all.length && caller.kind !== 'anonymous')
      if (entries.length === 0) return { index, reply: emptyReply(404, headers) }
      return { index, reply: jsonReply(entries.map((entry) => kvEntryToJson(entry)), exchange.isPretty, headers) }
    })
  }

  function getKey(exchange: Exchange, key: string): Promise<Reply | null> {
    if (key === '') throw missingKey()
    exchange.requireLocalDatacenter()
    const caller = exchange.caller()
    if (!acl.canReadKey(caller, key)) throw permissionDenied(caller, 'key:read', key)
    const isRaw = exchange.has('raw')
    return answerBlocking(exchange, state.hub, { kind: 'key', key }, () => {
      const entry = state.kv.get(key)
      const index = state.kv.indexOfKey(key)
      if (entry === null) return { index, reply: emptyReply(404, queryMeta(index)) }
      if (isRaw) {
        // The stored bytes, typed so that a browser never renders or sniffs them (Consul's own hardening).
        const headers = {
          ...queryMeta(index),
          'Content-Type': 'text/plain',
          'X-Content-Type-Options': 'nosniff',
          'Content-Security-Policy': 'sandbox',
        }
        return { index, reply: { status: 200, headers, body: entry.value ?? '' } }
      }
      return { index, reply: jsonReply([kvEntryToJson(entry)], exchange.isPretty, queryMeta(index)) }
    })
  }

  async function put(exchange: Exchange, key: string): Promise<Reply> {
    if (key === '') throw missingKey()
    rejectConflictingFlags(exchange, ['cas', 'acquire', 'release'])
    const flags = exchange.has('flags') ? readUint64Param(exchange, 'flags') : 0n
    let verb = 'set'
    let index = 0n
    let session = ''
    if (exchange.has('cas')) {
      index = readUint64Param(exchange, 'cas')
      verb = 'cas'
    }
    if (exchange.has('acquire')) {
      verb = 'lock'
      session = exchange.get('acquire')
    }
    if (exchange.has('release')) {
      verb = 'unlock'
      session = exchange.get('release')
    }
    const read = await exchange.readBody(settings.kvMaxValueSize)
    if (!read.ok) throw bodyTooLarge(read.declaredBytes, settings.kvMaxValueSize, KV_SIZE_DOCS_URL)
    exchange.requireLocalDatacenter()
    const caller = exchange.caller()
    if (!acl.canWriteKey(caller, key)) throw permissionDenied(caller, 'key:write', key)
    const op: KvOp = { verb, key, value: read.body.length === 0 ? null : read.body, flags, index, session }
    return outcomeReply(exchange, state.applyKv(op))
  }

  function remove(exchange: Exchange, key: string): Reply {
    rejectConflictingFlags(exchange, ['recurse', 'cas'])
    const isTree = exchange.has('recurse')
    if (!isTree && key === '') throw missingKey()
    const hasCas = exchange.has('cas')
    const index = hasCas ? readUint64Param(exchange, 'cas') : 0n
    exchange.requireLocalDatacenter()
    const caller = exchange.caller()
    const isAllowed = isTree ? acl.canWritePrefix(caller, key) : acl.canWriteKey(caller, key)
    if (!isAllowed) throw permissionDenied(caller, 'key:write', key)
    const verb = isTree ? 'delete-tree' : hasCas ? 'delete-cas' : 'delete'
    return outcomeReply(exchange, state.applyKv({ verb, key, value: null, flags: 0n, index, session: '' }))
  }

  return async (exchange, key) => {
    const problem = keyProblem(key, settings.keyRules)
    if (problem !== null) throw new ApiError(400, problem)
    switch (exchange.method) {
      case 'GET':
        if (exchange.has('keys')) return listKeys(exchange, key)
        if (exchange.has('recurse')) return listEntries(exchange, key)
        return getKey(exchange, key)
      case 'PUT':
        return put(exchange, key)
      default:
        return remove(exchange, key)
    }
  }
}

function filteredMeta(index: bigint, isFiltered: boolean): Record<string, string> {
  const headers = queryMeta(index)
  if (isFiltered) headers['X-Consul-Results-Filtered-By-ACLs'] = 'true'
  return headers
}

/** KV API writes answer `true`/`false`; state-store errors (sessions) are 500s with Consul's text. */
function outcomeReply(exchange: Exchange, outcome: ReturnType<DevState['applyKv']>): Reply {
  if (outcome.kind === 'error') throw new ApiError(500, outcome.what)
  return jsonReply(outcome.kind === 'ok', exchange.isPretty)
}

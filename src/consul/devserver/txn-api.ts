/** `PUT /v1/txn` (consul.md §22): body limits, parsing (txn.ts), key rules, token, then one atomic run (state.ts).
 *  A read-only transaction carries KnownLeader/LastContact and no index; a write transaction carries neither;
 *  any failed op makes it a 409 listing every failure. */

import { permissionDenied, type AclPolicy, type Caller } from './acl.js'
import { ApiError } from './errors.js'
import { bodyTooLarge, jsonReply, type Exchange, type Reply, type Route } from './http.js'
import { keyProblem, type KeyRules } from './key-rules.js'
import { isWriteVerb, type KvOp } from './kv-ops.js'
import type { DevState, TxnGuard } from './state.js'
import { parseTxnBody, TXN_DOCS_URL, type TxnLimits } from './txn.js'

export interface TxnApiSettings {
  readonly state: DevState
  readonly acl: AclPolicy
  readonly keyRules: KeyRules
  readonly limits: TxnLimits
  readonly txnMaxReqLen: number
}

function guardFor(acl: AclPolicy, caller: Caller): TxnGuard {
  return {
    denial(op: KvOp): string | null {
      let isAllowed: boolean
      if (op.verb === 'delete-tree') isAllowed = acl.canWritePrefix(caller, op.key)
      else if (isWriteVerb(op.verb)) isAllowed = acl.canWriteKey(caller, op.key)
      // get-tree is filtered entry by entry instead, as Consul does.
      else isAllowed = op.verb === 'get-tree' || acl.canReadKey(caller, op.key)
      if (isAllowed) return null
      return permissionDenied(caller, isWriteVerb(op.verb) ? 'key:write' : 'key:read', op.key).text
    },
    isReadable: (key) => acl.canReadKey(caller, key),
  }
}

export function txnRoute(settings: TxnApiSettings): Route {
  async function handler(exchange: Exchange): Promise<Reply> {
    const read = await exchange.readBody(settings.txnMaxReqLen)
    if (!read.ok) throw bodyTooLarge(read.declaredBytes, settings.txnMaxReqLen, TXN_DOCS_URL)
    const txn = parseTxnBody(read.body.toString('utf8'), settings.limits)
    for (const op of txn.ops) {
      const problem = keyProblem(op.key, settings.keyRules)
      if (problem !== null) throw new ApiError(400, problem)
    }
    exchange.requireLocalDatacenter()
    const caller = exchange.caller()
    const outcome = settings.state.runTxn(txn.ops, guardFor(settings.acl, caller))
    const headers: Record<string, string> = txn.isReadOnly ? { 'X-Consul-KnownLeader': 'true', 'X-Consul-LastContact': '0' } : {}
    if (!outcome.ok) return jsonReply({ Results: null, Errors: outcome.errors }, exchange.isPretty, headers, 409)
    // Go marshals an empty result slice that was never appended to as null (a txn of deletes only).
    const results = outcome.results.length === 0 ? null : outcome.results
    return jsonReply({ Results: results, Errors: null }, exchange.isPretty, headers)
  }
  return { path: '/v1/txn', methods: ['PUT'], hasQueryOptions: false, handler }
}

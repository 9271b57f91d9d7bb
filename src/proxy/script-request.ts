/** The request as scripts see it (lua-compat's RequestView, which the JS runtime shares; scripts.md §4–§6), built
 *  only for hosts that have a script. Plain fields plus a lazy body reader supplied by the caller. */
import type { IncomingMessage } from 'node:http'
import type { ScriptRequest } from '../scripts/index.js'
import { clientAddressOf } from './routing.js'

export interface ScriptRequestFacts {
  readonly method: string
  /** Origin-form target as received. */
  readonly target: string
  readonly routingHost: string
  readonly remoteAddress: string
  readonly requestId: string
  /** `performance.now()` when the request head arrived. */
  readonly startMs: number
  readonly readBody: () => Promise<Buffer | null>
}

export function scriptRequestOf(req: IncomingMessage, facts: ScriptRequestFacts): ScriptRequest {
  const socket = req.socket
  return {
    method: facts.method,
    target: facts.target,
    host: facts.routingHost,
    httpVersion: req.httpVersion,
    rawHeaders: req.rawHeaders,
    remoteAddr: facts.remoteAddress,
    remotePort: socket.remotePort ?? 0,
    serverAddr: clientAddressOf(socket.localAddress),
    serverPort: socket.localPort ?? 0,
    requestId: facts.requestId,
    startTimeMs: Math.round(performance.timeOrigin + facts.startMs),
    readBody: facts.readBody,
  }
}

/** Every response the proxy generates itself (proxy.md §6), declared once: Slardar-style 8-digit code, status, message
 *  and the JSON body, serialised at load time so answering an error costs no JSON work. Also the typed exceptions of
 *  the proxy (`PROXY_` codes) for failures a user must act on. Leaves writing a response to the callers. */

import { SERVER_HEADER } from '../version.js'

export interface GeneratedError {
  readonly code: number
  readonly status: number
  readonly msg: string
  /** `{"code":<code>,"msg":"<msg>"}` */
  readonly body: Buffer
  readonly codeText: string
  readonly bodyLengthText: string
}

function declare(code: number, msg: string): GeneratedError {
  const body = Buffer.from(`{"code":${code},"msg":${JSON.stringify(msg)}}`)
  return Object.freeze({
    code,
    status: Math.floor(code / 100_000),
    msg,
    body,
    codeText: String(code),
    bodyLengthText: String(body.length),
  })
}

export const NO_UPSTREAM = declare(50200001, 'no upstream for host')
export const NO_SERVERS = declare(50200002, 'no servers available')
export const CONNECT_FAILED = declare(50200003, 'upstream connect failed')
export const INVALID_RESPONSE = declare(50200004, 'invalid upstream response')
export const UPSTREAM_TIMEOUT = declare(50400001, 'upstream timeout')
export const BAD_REQUEST = declare(40000001, 'bad request')
export const REQUEST_TIMEOUT = declare(40800001, 'request timeout')
export const BODY_TOO_LARGE = declare(41300001, 'request body too large')
export const HEADER_TOO_LARGE = declare(43100001, 'request header too large')
export const SCRIPT_ERROR = declare(50000001, 'script error')
export const SCRIPT_TIMEOUT = declare(50000002, 'script timeout')
export const INTERNAL_ERROR = declare(50000000, 'internal error')

/** All of §6's table, for tests and documentation. */
export const GENERATED_ERRORS: readonly GeneratedError[] = [
  NO_UPSTREAM, NO_SERVERS, CONNECT_FAILED, INVALID_RESPONSE, UPSTREAM_TIMEOUT, BAD_REQUEST, REQUEST_TIMEOUT,
  BODY_TOO_LARGE, HEADER_TOO_LARGE, SCRIPT_ERROR, SCRIPT_TIMEOUT, INTERNAL_ERROR,
]

/** The §6 headers of a generated error, flat for `writeHead`. */
export function errorHeadersOf(error: GeneratedError, requestId: string, hasServerHeader: boolean): string[] {
  const headers = ['Content-Type', 'application/json', 'Content-Length', error.bodyLengthText, 'X-Error-Code', error.codeText]
  if (hasServerHeader) headers.push('Server', SERVER_HEADER)
  headers.push('X-Request-Id', requestId)
  return headers
}

export const PROXY_ERROR_CODES = {
  listen: 'PROXY_LISTEN_FAILED',
} as const

/** A `proxy.listen` address could not be bound. */
export class ProxyListenError extends Error {
  readonly code = PROXY_ERROR_CODES.listen
  constructor(readonly host: string, readonly port: number, cause: Error & { code?: string }) {
    super(
      `proxy.listen ${host.includes(':') ? `[${host}]` : host}:${port}: cannot listen (${cause.code ?? cause.message}); ` +
        'check that no other process uses the port and that the address belongs to this machine',
      { cause },
    )
  }
}

/** The admin API's answers as values (admin-api.md §2): a handler returns a Reply and the server writes it,
 *  so every response gets the same headers and HEAD handling in one place. Owns Slardar's body shapes —
 *  `{"status":<s>,"msg":"<text>"}` errors, `{"status":200}` for upstream writes, bare JSON strings for
 *  scripts — and the messages every endpoint shares. */

export const JSON_CONTENT_TYPE = 'application/json'

export interface Reply {
  readonly status: number
  /** The whole body, already serialised. */
  readonly body: string
  readonly contentType: string
  /** Extra headers (`Allow`, `ETag`, `WWW-Authenticate`). */
  readonly headers?: Readonly<Record<string, string>>
  /** Close the connection after this answer (an oversized body is not read to its end). */
  readonly closesConnection?: boolean
}

export function jsonReply(status: number, value: unknown, headers?: Readonly<Record<string, string>>): Reply {
  return { status, body: JSON.stringify(value), contentType: JSON_CONTENT_TYPE, ...(headers === undefined ? {} : { headers }) }
}

/** A JSON body its builder already serialised (`/status`, megabytes at scale: written as text, not a value tree). */
export function jsonTextReply(status: number, body: string): Reply {
  return { status, body, contentType: JSON_CONTENT_TYPE }
}

/** `{"status":<status>,"msg":"<msg>"}`: every error of the API, and a few successes with a message. */
export function statusReply(status: number, msg: string, headers?: Readonly<Record<string, string>>): Reply {
  return jsonReply(status, { status, msg }, headers)
}

export function textReply(status: number, body: string, contentType: string): Reply {
  return { status, body, contentType }
}

export const MAX_BODY_BYTES = 1_048_576

export const NOT_FOUND = statusReply(404, 'not found')
export const INTERNAL_ERROR = statusReply(500, 'internal error')
export const EMPTY_BODY = statusReply(400, 'empty body')
export const BODY_TOO_LARGE: Reply = { ...statusReply(413, `body too large (max ${MAX_BODY_BYTES} bytes)`), closesConnection: true }
/** Successful upstream writes carry no `msg` (Slardar). */
export const UPSTREAM_WRITTEN = jsonReply(200, { status: 200 })
/** Slardar's bare-string script replies. */
export const SCRIPT_OK = jsonReply(200, 'ok')

export function methodNotAllowed(allowed: readonly string[]): Reply {
  return statusReply(405, 'method not allowed', { Allow: allowed.join(', ') })
}

/** 202 of admin-api.md §4: the write stands in Consul but this node has not applied it within admin.apply_wait. */
export function notYetApplied(index: bigint | null): Reply {
  const where = index === null ? 'written to consul' : `written to consul at index ${index}`
  return statusReply(202, `${where}; not yet applied on this node`)
}

/** Routing for the admin API (admin-api.md §2): on the path only, never percent-decoded, with `/lua/` and
 *  `/js/` equal to `/lua` and `/js`; exact paths first, then the `/<family>/<name>` prefixes whose rest is
 *  the name. Owns the Allow lists (HEAD wherever GET is) and the request value handlers receive. */

import type { IncomingHttpHeaders } from 'node:http'
import type { Reply } from './replies.js'

export interface AdminRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /** What follows a prefix route (`/upstream/<name>` → `<name>`, possibly empty); null on exact routes. */
  readonly param: string | null
}

/** `?dry_run=1` (admin-api.md §4): validate, compile, write nothing. */
export function isDryRun(request: AdminRequest): boolean {
  const flag = request.query.get('dry_run')
  return flag === '1' || flag === 'true'
}

/** No bytes, or only whitespace: 400 `empty body`. */
export function isBlankBody(body: Buffer): boolean {
  return body.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d)
}

export type Handler = (request: AdminRequest) => Reply | Promise<Reply>

/** Handlers by method; HEAD is served by the GET handler. */
export type MethodHandlers = Readonly<Partial<Record<'GET' | 'POST' | 'PUT' | 'DELETE', Handler>>>

export interface RouteMatch {
  readonly handlers: MethodHandlers
  readonly allowed: readonly string[]
  readonly param: string | null
}

const METHOD_ORDER = ['GET', 'POST', 'PUT', 'DELETE'] as const
const SLASH_EQUIVALENT: ReadonlyMap<string, string> = new Map([['/lua/', '/lua'], ['/js/', '/js']])

export class Router {
  private readonly exact = new Map<string, RouteMatch>()
  private readonly prefixed: { prefix: string; handlers: MethodHandlers; allowed: readonly string[] }[] = []

  /** `path` ending in `/` registers a prefix route: everything after it is the parameter. */
  add(path: string, handlers: MethodHandlers): this {
    const allowed = allowList(handlers)
    if (path.endsWith('/')) this.prefixed.push({ prefix: path, handlers, allowed })
    else this.exact.set(path, { handlers, allowed, param: null })
    return this
  }

  match(path: string): RouteMatch | null {
    const normalised = SLASH_EQUIVALENT.get(path) ?? path
    const exact = this.exact.get(normalised)
    if (exact !== undefined) return exact
    for (const route of this.prefixed) {
      if (normalised.startsWith(route.prefix)) {
        return { handlers: route.handlers, allowed: route.allowed, param: normalised.slice(route.prefix.length) }
      }
    }
    return null
  }
}

/** The handler for `method`, or null (→ 405); HEAD runs GET's handler and the server drops the body. */
export function handlerFor(match: RouteMatch, method: string): Handler | null {
  const key = method === 'HEAD' ? 'GET' : method
  if (key !== 'GET' && key !== 'POST' && key !== 'PUT' && key !== 'DELETE') return null
  return match.handlers[key] ?? null
}

function allowList(handlers: MethodHandlers): readonly string[] {
  const allowed: string[] = []
  for (const method of METHOD_ORDER) {
    if (handlers[method] === undefined) continue
    allowed.push(method)
    if (method === 'GET') allowed.push('HEAD')
  }
  return allowed
}

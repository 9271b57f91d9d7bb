/** ACL mode (consul.md §15, §23): which token a request carries, who it is, and what it may do with keys.
 *  The management token (`acl_token`) may do everything; test tokens (`acl_tokens`) have key read/write prefixes
 *  (write implies read); no token is the anonymous token, default deny. Beyond keys the model is deliberately
 *  small (no policies, roles or ACL API): any known token may use sessions, the catalog, health and agent/self;
 *  the anonymous token may not. With ACLs off every request is the management token. */

import { ApiError } from './errors.js'
import { goQuote } from './go-compat.js'

export interface TestToken {
  readonly secret: string
  readonly accessor: string
  /** Key prefixes this token may read. */
  readonly read: readonly string[]
  /** Key prefixes this token may write (and read). */
  readonly write: readonly string[]
}

export type Caller =
  | { readonly kind: 'management' }
  | { readonly kind: 'token'; readonly token: TestToken }
  | { readonly kind: 'anonymous' }

export const ANONYMOUS_ACCESSOR = '00000000-0000-0000-0000-000000000002'

const MANAGEMENT: Caller = { kind: 'management' }
const ANONYMOUS: Caller = { kind: 'anonymous' }

/** Consul's token precedence: `?token=`, then `X-Consul-Token`, then `Authorization: Bearer <t>`. Empty = none. */
export function readRequestToken(queryToken: string, headerToken: string, authorization: string): string {
  if (queryToken !== '') return queryToken
  if (headerToken !== '') return headerToken
  const parts = authorization.split(' ')
  if (parts.length > 1 && (parts[0] as string).toLowerCase() === 'bearer') return parts.slice(1).join(' ').trim()
  return ''
}

export class AclPolicy {
  private readonly tokensBySecret: ReadonlyMap<string, TestToken>

  constructor(
    private readonly managementToken: string | null,
    tokens: readonly TestToken[],
  ) {
    this.tokensBySecret = new Map(tokens.map((token) => [token.secret, token]))
  }

  get isEnabled(): boolean {
    return this.managementToken !== null
  }

  /** Resolves a secret; an unknown non-empty secret is Consul's 403 `ACL not found`. */
  resolve(secret: string): Caller {
    if (!this.isEnabled) return MANAGEMENT
    if (secret === '') return ANONYMOUS
    if (secret === this.managementToken) return MANAGEMENT
    const token = this.tokensBySecret.get(secret)
    if (token === undefined) throw new ApiError(403, 'ACL not found')
    return { kind: 'token', token }
  }

  canReadKey(caller: Caller, key: string): boolean {
    if (caller.kind !== 'token') return caller.kind === 'management'
    return [...caller.token.read, ...caller.token.write].some((prefix) => key.startsWith(prefix))
  }

  canWriteKey(caller: Caller, key: string): boolean {
    if (caller.kind !== 'token') return caller.kind === 'management'
    return caller.token.write.some((prefix) => key.startsWith(prefix))
  }

  /** Writing a whole tree needs write on a rule covering the prefix itself (there are no deny rules below it). */
  canWritePrefix(caller: Caller, prefix: string): boolean {
    return this.canWriteKey(caller, prefix)
  }

  /** Non-KV endpoints: any known token; the anonymous token is denied. */
  isKnown(caller: Caller): boolean {
    return caller.kind !== 'anonymous'
  }
}

/** Consul's permission-denied text; it names the token's public AccessorID only, never its secret. */
export function permissionDenied(caller: Caller, permission: string, resource: string): ApiError {
  const accessor = caller.kind === 'token' ? caller.token.accessor : ANONYMOUS_ACCESSOR
  return new ApiError(
    403,
    `Permission denied: token with AccessorID '${accessor}' lacks permission '${permission}' on ${goQuote(resource)}`,
  )
}

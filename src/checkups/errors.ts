/** Errors of the checkups area, each with a stable `UPSTREAM_` code (style.md, Errors). Expected bad input is not
 *  here: `parseUpstreamJson` returns its problems as a value. These are the conditions a caller logs or maps to a
 *  response; callers branch on `code`, never on the class.
 *
 *  | code                       | raised when |
 *  |----------------------------|-------------|
 *  | `UPSTREAM_NO_USABLE_PEER`  | a request finds no available, untried server (proxy.md §6: 502, 50200002) |
 *  | `UPSTREAM_UNRESOLVED_HOST` | a hostname server has no address yet; an attempt fails at once, class `error` |
 *  | `UPSTREAM_RESOLVE_FAILED`  | a re-resolution failed and the previous addresses are kept (a warning) |
 */

/** Every code with its one-line meaning; a test keeps this list, the classes and the header table in step. */
export const UPSTREAM_ERROR_CODES = Object.freeze({
  UPSTREAM_NO_USABLE_PEER: 'no available, untried server for a request',
  UPSTREAM_UNRESOLVED_HOST: 'a hostname server has no address yet',
  UPSTREAM_RESOLVE_FAILED: 'a re-resolution failed; the previous addresses are kept',
})

export type UpstreamErrorCode = keyof typeof UPSTREAM_ERROR_CODES

export class NoUsablePeerError extends Error {
  readonly code = 'UPSTREAM_NO_USABLE_PEER'
  constructor(readonly upstream: string, readonly attempts: number) {
    super(`upstream "${upstream}": no usable peer after ${attempts} attempt(s); ` +
      "see /status for each server's last heartbeat")
  }
}

/** The message is exactly the probe/attempt `msg` of upstreams.md §1.5 and §5.2. */
export class UnresolvedHostError extends Error {
  readonly code = 'UPSTREAM_UNRESOLVED_HOST'
  constructor(readonly host: string, readonly reason: string) {
    super(`could not resolve ${host}: ${reason}`)
  }
}

export class ResolveFailedError extends Error {
  readonly code = 'UPSTREAM_RESOLVE_FAILED'
  constructor(readonly host: string, readonly reason: string, readonly kept: readonly string[], options?: ErrorOptions) {
    super(`could not re-resolve ${host}: ${reason}; keeping ${kept.join(', ')} until a resolution succeeds`, options)
  }
}

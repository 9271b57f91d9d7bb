/** Consul-side errors (code prefix CONSUL_). `kind` tells callers what failed: the network (Consul
 *  unreachable), an HTTP status from Consul, a timeout, a cancel, or an answer we could not use. */

export type ConsulCallErrorKind = 'network' | 'status' | 'timeout' | 'aborted' | 'protocol'

export class ConsulCallError extends Error {
  readonly code = 'CONSUL_CALL_FAILED'
  constructor(
    readonly kind: ConsulCallErrorKind,
    readonly server: string,
    readonly detail: string,
    readonly statusCode?: number,
    options?: { cause?: unknown },
  ) {
    super(`${server}: ${statusCode === undefined ? detail : `${statusCode} ${detail}`}`, options)
    this.name = 'ConsulCallError'
  }

  /** True when the failure says nothing about Consul's data, only that it could not be reached. */
  get isNetworkLevel(): boolean {
    return this.kind === 'network' || this.kind === 'timeout'
  }
}

/** A listing that arrived but cannot be trusted as the complete truth (consul.md §5). */
export class UnusableListingError extends Error {
  readonly code = 'CONSUL_UNUSABLE_LISTING'
  constructor(
    readonly server: string,
    reason: string,
    /** The answer carried no usable X-Consul-Index, so the next read starts over from 0 (consul.md §4). */
    readonly resetsCursor = false,
  ) {
    super(`${server}: unusable listing: ${reason}`)
    this.name = 'UnusableListingError'
  }
}

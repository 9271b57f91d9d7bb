/** Hostname resolution for servers given by name (upstreams.md §1.5): the primary resolves each hostname when it is
 *  first installed and every `global.resolve_interval`, with the OS resolver (all addresses, in returned order, so
 *  /etc/hosts applies), bounded by the probe p-limit. A failed re-resolution keeps the previous list and warns; a
 *  hostname that never resolved carries `could not resolve <host>: <code>`. Owns lookups and their timer. Results go
 *  into the table (`applyAddresses`) and out through `onChanges` for the workers; health and balancer state are
 *  untouched because ids stay `host:port`. */
import { lookup as dnsLookup } from 'node:dns/promises'
import type { LimitFunction } from 'p-limit'
import { ResolveFailedError, UnresolvedHostError } from './errors.js'
import type { AddressChange } from './model.js'
import type { UpstreamTable } from './table.js'

/** Every address of a hostname, in the resolver's order. Injected in tests. */
export type LookupFunction = (host: string) => Promise<readonly string[]>

export const systemLookup: LookupFunction = async (host) => {
  const answers = await dnsLookup(host, { all: true, order: 'verbatim' })
  return answers.map((answer) => answer.address)
}

export interface ResolverOptions {
  readonly table: UpstreamTable
  /** `global.resolve_interval` */
  readonly intervalSec: number
  /** The heartbeat's probe limiter (`Heartbeat.limit`). */
  readonly limit: LimitFunction
  readonly lookup?: LookupFunction
  /** Address changes to broadcast to workers (already applied to `table`). Must not throw. */
  readonly onChanges: (changes: readonly AddressChange[]) => void
  /** A re-resolution failed and the previous addresses are kept; the owner logs it once. */
  readonly onWarning?: (warning: ResolveFailedError) => void
}

export class HostResolver {
  readonly #options: ResolverOptions
  readonly #lookup: LookupFunction
  #timer: NodeJS.Timeout | null = null
  #isRefreshing = false

  constructor(options: ResolverOptions) {
    this.#options = options
    this.#lookup = options.lookup ?? systemLookup
  }

  /** Re-resolves every hostname in use every `intervalSec`; a refresh still running skips its next turn. */
  start(): void {
    if (this.#timer !== null) return
    // Unref'd: the primary's listeners keep the process alive; a forgotten resolver must not.
    this.#timer = setInterval(() => void this.#refresh(), this.#options.intervalSec * 1000).unref()
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** Resolves `hosts` now (an install's `newHostnames`), applies the results to the table and broadcasts the ones
   *  that changed something. Resolves with those changes once every lookup has settled. */
  async resolve(hosts: readonly string[]): Promise<AddressChange[]> {
    const results = await Promise.all(hosts.map((host) => this.#options.limit(() => this.#resolveOne(host))))
    const changes = results.filter((change): change is AddressChange => change !== null)
    if (changes.length > 0) {
      this.#options.table.applyAddresses(changes)
      this.#options.onChanges(changes)
    }
    return changes
  }

  async #refresh(): Promise<void> {
    if (this.#isRefreshing) return
    this.#isRefreshing = true
    try {
      await this.resolve(this.#options.table.hostnames())
    } catch {
      // Lookups never reject (#resolveOne catches); only the shared limiter does, when it is cleared on shutdown.
    } finally {
      this.#isRefreshing = false
    }
  }

  /** The change a lookup makes to the recorded state of `host`, or null when it makes none. */
  async #resolveOne(host: string): Promise<AddressChange | null> {
    const known = this.#options.table.addressesOf(host)
    let addresses: readonly string[]
    try {
      addresses = await this.#lookup(host)
      if (addresses.length === 0) throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' })
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err))
      if (known !== undefined && known.addresses.length > 0) {
        this.#options.onWarning?.(new ResolveFailedError(host, reason, known.addresses, { cause: err }))
        return null
      }
      const error = new UnresolvedHostError(host, reason).message
      return known?.error === error ? null : { host, addresses: [], error }
    }
    if (known !== undefined && known.error === null && sameList(known.addresses, addresses)) return null
    return { host, addresses: [...addresses], error: null }
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i])
}

/** The read-through overlay for dynamic-config keys (consul.md §7), used only while the live state is not
 *  authoritative (served from the snapshot file, started empty, or the watch failing for longer than its watchdog).
 *  A read answers at once with the last known value and, when that value is older than its TTL, refreshes the key
 *  with one non-blocking `GET <prefix><key>?raw`: one request in flight per key, four overall. Found values are kept
 *  for `config_positive_ttl`; a 404, an invalid value or a failed read for `config_negative_ttl` (an invalid value or a
 *  failure keeps the previous value, as §2 does for listings). The next usable listing drops the whole overlay.
 *
 *  Owns the cache and the refresh bookkeeping; the fetch is injected (sync.ts passes `readRawKey`), so the rules are
 *  unit-tested with a manual clock. */

import { isUtf8 } from 'node:buffer'
import JSON5 from 'json5'
import pLimit, { type LimitFunction } from 'p-limit'
import type { ConsulEndpoint } from './client.js'
import type { Clock } from './watch-rules.js'

/** What one refresh found: the raw bytes, or absent (404 or an empty value). Rejects when Consul could not answer. */
export type FetchRawKey = (key: string) => Promise<Buffer | undefined>

export interface OverlayOptions {
  readonly fetch: FetchRawKey
  /** `consul.config_positive_ttl` */
  readonly positiveTtlSec: number
  /** `consul.config_negative_ttl` */
  readonly negativeTtlSec: number
  /** `consul.config_cache_enable`: false refreshes on every read (still one request in flight per key). */
  readonly isCacheEnabled: boolean
  readonly clock: Clock
  /** A refresh stored a new answer for `key`: its value, undefined when absent. Workers read their own copy of the
   *  dynamic config, so the primary forwards this to them. */
  readonly onRefreshed?: (key: string, value: unknown) => void
  /** A refresh could not be used (failed read or invalid JSON); the previous value stays. */
  readonly onRefreshProblem?: (key: string, message: string) => void
}

interface CachedValue {
  /** undefined = known to be absent. */
  readonly value: unknown
  readonly expiresAtMs: number
}

/** Refreshes in flight at once, over all keys (consul.md §7). */
const MAX_CONCURRENT_REFRESHES = 4

export class DynamicConfigOverlay {
  readonly #options: OverlayOptions
  readonly #limit: LimitFunction = pLimit(MAX_CONCURRENT_REFRESHES)
  readonly #cache = new Map<string, CachedValue>()
  readonly #inFlight = new Map<string, Promise<void>>()
  /** Bumped by `clear()`: a refresh started before it must not write into the new overlay. */
  #generation = 0

  constructor(options: OverlayOptions) {
    this.#options = options
  }

  /** The last known value of `key` (the overlay's, else `live`), refreshing it in the background when stale. */
  read(key: string, live: unknown): unknown {
    const cached = this.#cache.get(key)
    const isFresh = cached !== undefined && this.#options.isCacheEnabled && cached.expiresAtMs > this.#options.clock.nowMs()
    if (!isFresh) this.#refresh(key, cached === undefined ? live : cached.value)
    return cached === undefined ? live : cached.value
  }

  /** A usable listing arrived: the live state is the truth again. Returns the keys the overlay held, whose readers
   *  must go back to the live values. */
  clear(): string[] {
    this.#generation += 1
    const dropped = [...this.#cache.keys()]
    this.#cache.clear()
    return dropped
  }

  /** The values the overlay holds now (undefined = known absent), without refreshing anything: the copy a new
   *  worker starts from. */
  entries(): IterableIterator<[string, unknown]> {
    return mapValues(this.#cache.entries())
  }

  /** Resolves when every refresh started so far has finished (shutdown, tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.#inFlight.values()])
  }

  #refresh(key: string, lastKnown: unknown): void {
    if (this.#inFlight.has(key)) return
    const generation = this.#generation
    const done = this.#limit(() => this.#options.fetch(key)).then(
      (raw) => this.#store(generation, key, lastKnown, parse(raw)),
      (err: unknown) => this.#store(generation, key, lastKnown, { kind: 'problem', message: (err as Error).message ?? String(err) }),
    ).finally(() => this.#inFlight.delete(key))
    this.#inFlight.set(key, done)
  }

  #store(generation: number, key: string, lastKnown: unknown, outcome: Outcome): void {
    if (generation !== this.#generation) return
    const nowMs = this.#options.clock.nowMs()
    const negativeUntilMs = nowMs + this.#options.negativeTtlSec * 1000
    switch (outcome.kind) {
      case 'found':
        this.#cache.set(key, { value: outcome.value, expiresAtMs: nowMs + this.#options.positiveTtlSec * 1000 })
        break
      case 'absent':
        this.#cache.set(key, { value: undefined, expiresAtMs: negativeUntilMs })
        break
      case 'problem':
        this.#cache.set(key, { value: lastKnown, expiresAtMs: negativeUntilMs })
        this.#options.onRefreshProblem?.(key, outcome.message)
        return
    }
    this.#options.onRefreshed?.(key, outcome.kind === 'found' ? outcome.value : undefined)
  }
}

function* mapValues(entries: IterableIterator<[string, CachedValue]>): IterableIterator<[string, unknown]> {
  for (const [key, cached] of entries) yield [key, cached.value]
}

type Outcome =
  | { readonly kind: 'found'; readonly value: unknown }
  | { readonly kind: 'absent' }
  | { readonly kind: 'problem'; readonly message: string }

function parse(raw: Buffer | undefined): Outcome {
  if (raw === undefined || raw.length === 0) return { kind: 'absent' }
  if (!isUtf8(raw)) return { kind: 'problem', message: 'value is not valid UTF-8' }
  try {
    return { kind: 'found', value: JSON5.parse(raw.toString('utf8')) as unknown }
  } catch (err) {
    return { kind: 'problem', message: `value is not valid JSON: ${(err as Error).message}` }
  }
}

/** `GET <prefix><key>?raw`, non-blocking, through the server's `consul` client; undefined for a 404. */
export async function readRawKey(endpoint: ConsulEndpoint, fullKey: string, timeoutMs: number): Promise<Buffer | undefined> {
  // The client's typings omit `raw`'s Buffer result and `timeout`, which it honours (as in client.ts).
  const kv = endpoint.client.kv as unknown as { get(options: Record<string, unknown>): Promise<unknown> }
  const body = await kv.get({ key: fullKey, raw: true, timeout: timeoutMs })
  if (body === undefined || Buffer.isBuffer(body)) return body
  return Buffer.from(String(body))
}

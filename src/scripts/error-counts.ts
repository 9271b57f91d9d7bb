/** Script failures of one process, for `slardar_script_errors_total{runtime,name,kind}` (admin-api.md §8): a request
 *  whose script threw (`error`) or ran out of time (`timeout`), and a version that failed to compile or load
 *  (`load`). Plain counters, read when /metrics is scraped (or sent to the primary by a worker); the label set stays
 *  bounded because names are script names from KV, never request data. Owns the counts only; host-run.ts and
 *  store.ts decide what counts. */

import type { ScriptRuntimeName } from './store.js'

export type ScriptErrorKind = 'error' | 'timeout' | 'load'

/** One labelled counter, as plain data (it crosses IPC). */
export interface ScriptErrorCount {
  readonly runtime: ScriptRuntimeName
  readonly name: string
  readonly kind: ScriptErrorKind
  readonly count: number
}

export class ScriptErrorCounts {
  readonly #counts = new Map<string, { runtime: ScriptRuntimeName; name: string; kind: ScriptErrorKind; count: number }>()

  count(runtime: ScriptRuntimeName, name: string, kind: ScriptErrorKind): void {
    // Script names match [-_a-zA-Z0-9.]+ (consul.md §1), so NUL-joined keys cannot collide.
    const key = `${runtime}\0${name}\0${kind}`
    const entry = this.#counts.get(key)
    if (entry === undefined) this.#counts.set(key, { runtime, name, kind, count: 1 })
    else entry.count += 1
  }

  /** Every counter so far, copies in first-seen order. */
  list(): ScriptErrorCount[] {
    return [...this.#counts.values()].map((entry) => ({ ...entry }))
  }
}

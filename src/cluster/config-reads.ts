/** A worker's record of the dynamic-config keys its scripts read, sent to the primary at most once a second.
 *  Workers answer reads from their own copy and never talk to Consul; while the primary's state is not
 *  authoritative, these reports are what drive its read-through refreshes (consul.md §7), and the refreshed values
 *  come back in the state feed. A read costs one Set.add; the set is bounded so a script inventing keys cannot grow
 *  it without limit. */

/** Keys remembered per interval; a script reading more distinct keys than this in one second is not a config user. */
const MAX_KEYS_PER_REPORT = 1024
const REPORT_INTERVAL_MS = 1000

export class ConfigReadReporter {
  readonly #send: (keys: readonly string[]) => void
  #keys = new Set<string>()
  #timer: NodeJS.Timeout | null = null

  constructor(send: (keys: readonly string[]) => void) {
    this.#send = send
  }

  note(key: string): void {
    if (this.#keys.size >= MAX_KEYS_PER_REPORT) return
    this.#keys.add(key)
    if (this.#timer !== null) return
    this.#timer = setTimeout(() => this.#flush(), REPORT_INTERVAL_MS)
    this.#timer.unref()
  }

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #flush(): void {
    this.#timer = null
    const keys = [...this.#keys]
    this.#keys = new Set()
    this.#send(keys)
  }
}

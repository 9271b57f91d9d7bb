/** The per-node script bookkeeping GET /lua and GET /js report (scripts.md §2): `global_version`, a counter
 *  per runtime that goes up by one each time an applied KV state changes that runtime's active set, and for
 *  each active name the time this node applied its version. Fed with every applied state by the backend's
 *  subscription; the versions themselves (md5 of the source) are computed once per KV entry. */

import { createHash } from 'node:crypto'
import type { KvState, ServedKey } from '../consul/apply.js'
import type { ScriptRuntime } from '../consul/keys.js'

export interface ActiveScript {
  readonly name: string
  /** Lowercase hex md5 of the source bytes. */
  readonly version: string
  /** When this node applied this version (ms since the epoch). */
  readonly appliedAtMs: number
}

interface RuntimeRecord {
  globalVersion: number
  /** Active names sorted, with their version and apply time. */
  scripts: readonly ActiveScript[]
}

export function md5Hex(bytes: Buffer | string): string {
  return createHash('md5').update(bytes).digest('hex')
}

export class ScriptVersionTracker {
  private readonly records: Record<ScriptRuntime, RuntimeRecord> = {
    lua: { globalVersion: 0, scripts: [] },
    js: { globalVersion: 0, scripts: [] },
  }
  /** Served entries are reused while unchanged, so each source is hashed once. */
  private readonly versionOfEntry = new WeakMap<ServedKey, string>()

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** Records one applied state. The process started with nothing active, so a first state that already has
   *  scripts counts as one change. */
  observe(state: KvState): void {
    const atMs = this.nowMs()
    for (const runtime of ['lua', 'js'] as const) {
      const record = this.records[runtime]
      const next = this.collectActive(state, runtime, record.scripts, atMs)
      if (!hasSameVersions(record.scripts, next)) {
        record.globalVersion += 1
        record.scripts = next
      }
    }
  }

  globalVersion(runtime: ScriptRuntime): number {
    return this.records[runtime].globalVersion
  }

  /** Active scripts and modules of `runtime`, sorted by name. */
  activeScripts(runtime: ScriptRuntime): readonly ActiveScript[] {
    return this.records[runtime].scripts
  }

  /** The version of a served script or staged key, hashed once per entry. */
  versionOf(served: ServedKey): string {
    let version = this.versionOfEntry.get(served)
    if (version === undefined) {
      version = md5Hex(served.entry.value ?? Buffer.alloc(0))
      this.versionOfEntry.set(served, version)
    }
    return version
  }

  private collectActive(state: KvState, runtime: ScriptRuntime, previous: readonly ActiveScript[], atMs: number): ActiveScript[] {
    const before = new Map(previous.map((script) => [script.name, script]))
    const scripts: ActiveScript[] = []
    for (const served of state.served.values()) {
      const value = served.value
      if (value.kind !== 'script' || value.runtime !== runtime || value.isStaged) continue
      const version = this.versionOf(served)
      const earlier = before.get(value.name)
      scripts.push(earlier !== undefined && earlier.version === version ? earlier : { name: value.name, version, appliedAtMs: atMs })
    }
    return scripts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }
}

function hasSameVersions(a: readonly ActiveScript[], b: readonly ActiveScript[]): boolean {
  return a.length === b.length && a.every((script, i) => script.name === b[i]?.name && script.version === b[i]?.version)
}

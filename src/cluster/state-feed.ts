/** What the workers must know, taken from the primary: the full state for a worker that starts (or resyncs), and the
 *  stream of changes after it — upstream installs, active script sources and dynamic-config values as one versioned
 *  diff per applied change, health and address broadcasts as they happen. Owns the diff version and the record of
 *  what was last sent; leaves delivery (which workers, when) to the supervisor.
 *
 *  An applied Consul change installs its upstreams and then notifies its listeners in the same tick, so the parts of
 *  one change are gathered and sent as one diff from a microtask (scripts.md §3: scripts travel "in the same broadcast
 *  as the config change"). A broadcast flushes a pending diff first, so it never names a server a worker lacks. */

import type { HealthBroadcast, UpstreamChange } from '../checkups/index.js'
import type { KvState } from '../consul/apply.js'
import type { DynamicConfigChange, FullState, ScriptChange, ScriptEntry, StateDiff, ToWorker } from './messages.js'
import type { Primary } from './primary.js'

export interface StateFeedOptions {
  readonly primary: Primary
  /** Every diff and broadcast, in order, for the workers that already hold a full state. */
  readonly send: (message: ToWorker) => void
}

export class StateFeed {
  readonly #primary: Primary
  readonly #send: (message: ToWorker) => void
  readonly #unsubscribe: (() => void)[]
  #version = 0
  #pendingUpstreams: UpstreamChange[] = []
  #pendingScripts: ScriptChange[] = []
  #pendingConfig: DynamicConfigChange[] = []
  #isFlushQueued = false
  /** KV key → the script last sent for it, so a diff names only scripts whose source changed. */
  readonly #sentScripts = new Map<string, ScriptEntry>()
  /** Dynamic-config keys last sent. */
  readonly #sentConfigKeys = new Set<string>()

  constructor(options: StateFeedOptions) {
    this.#primary = options.primary
    this.#send = options.send
    this.#unsubscribe = [
      options.primary.onInstalled((_report, changes) => this.#queueUpstreams(changes)),
      options.primary.onApplied((change) => this.#queueKvChanges(change.state, change.changedKeys)),
      options.primary.onBroadcast((message) => this.#broadcast(message)),
      options.primary.onDynamicConfigOverride((key, value) => {
        this.#diffConfig(key, value, value !== undefined)
        this.#queueFlush()
      }),
    ]
  }

  /** The state as of now; diffs sent later start from its version. */
  fullState(): FullState {
    this.#flush()
    const { checkups, state } = this.#primary
    const upstreams: UpstreamChange[] = []
    for (const upstream of checkups.table.upstreams()) upstreams.push({ kind: 'set', name: upstream.name, definition: upstream.definition })
    const { health, addresses } = checkups.exportState()
    const scripts: ScriptEntry[] = []
    this.#sentScripts.clear()
    this.#sentConfigKeys.clear()
    for (const [key, { value }] of state.served) {
      if (value.kind === 'script' && !value.isStaged) {
        const script: ScriptEntry = { runtime: value.runtime, name: value.name, source: value.source }
        scripts.push(script)
        this.#sentScripts.set(key, script)
      }
    }
    // The read-through overlay's values included (consul.md §7), not only the live state's.
    const dynamicConfig: { key: string; value: unknown }[] = []
    for (const [key, value] of this.#primary.dynamicConfigValues()) {
      dynamicConfig.push({ key, value })
      this.#sentConfigKeys.add(key)
    }
    return { version: this.#version, upstreams, health, addresses, scripts, dynamicConfig }
  }

  /** Sends the pending diff now rather than from its microtask: a message that must follow the changes just made
   *  (a reload's new options after the upstreams re-parsed with them) is sent after this. */
  flush(): void {
    this.#flush()
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
  }

  #queueUpstreams(changes: readonly UpstreamChange[]): void {
    for (const change of changes) this.#pendingUpstreams.push(change)
    this.#queueFlush()
  }

  /** Only the keys the change names are looked at; a key that stopped being a script or dynamic value is deleted. */
  #queueKvChanges(state: KvState, changedKeys: readonly string[]): void {
    for (const key of changedKeys) {
      const value = state.served.get(key)?.value
      const isActiveScript = value?.kind === 'script' && !value.isStaged
      this.#diffScript(key, isActiveScript ? { runtime: value.runtime, name: value.name, source: value.source } : null)
      this.#diffConfig(key, value?.kind === 'dynamic' ? value.value : undefined, value?.kind === 'dynamic')
    }
    this.#queueFlush()
  }

  #diffScript(key: string, script: ScriptEntry | null): void {
    const sent = this.#sentScripts.get(key)
    if (script !== null) {
      if (sent?.source === script.source) return
      this.#sentScripts.set(key, script)
      this.#pendingScripts.push({ kind: 'set', runtime: script.runtime, name: script.name, source: script.source })
    } else if (sent !== undefined) {
      this.#sentScripts.delete(key)
      this.#pendingScripts.push({ kind: 'delete', runtime: sent.runtime, name: sent.name })
    }
  }

  #diffConfig(key: string, value: unknown, isPresent: boolean): void {
    if (isPresent) {
      this.#sentConfigKeys.add(key)
      this.#pendingConfig.push({ kind: 'set', key, value })
    } else if (this.#sentConfigKeys.delete(key)) {
      this.#pendingConfig.push({ kind: 'delete', key })
    }
  }

  #broadcast(message: HealthBroadcast): void {
    this.#flush()
    this.#send(message.kind === 'health' ? { kind: 'health', changes: message.changes } : { kind: 'addresses', changes: message.changes })
  }

  #queueFlush(): void {
    if (this.#isFlushQueued) return
    this.#isFlushQueued = true
    queueMicrotask(() => this.#flush())
  }

  #flush(): void {
    this.#isFlushQueued = false
    if (this.#pendingUpstreams.length === 0 && this.#pendingScripts.length === 0 && this.#pendingConfig.length === 0) return
    const diff: StateDiff = {
      from: this.#version,
      to: this.#version + 1,
      upstreams: this.#pendingUpstreams,
      scripts: this.#pendingScripts,
      dynamicConfig: this.#pendingConfig,
    }
    this.#version += 1
    this.#pendingUpstreams = []
    this.#pendingScripts = []
    this.#pendingConfig = []
    this.#send({ kind: 'state.diff', diff })
  }
}

/** The JS side of the store (scripts.md §3, §5): compiled versions, loaded instances of `js/` modules and
 *  `script.<host>` scripts, CommonJS `require` between them, and dependent reload.
 *  - Every name is compiled once per version; a version that does not compile leaves the previous one running.
 *  - Modules and scripts load when they arrive. While a module's top-level code runs, each `require` it makes is
 *    recorded; when a module changes or is removed, every loaded module and script that required it, directly or
 *    transitively, is loaded again at once (fix: Slardar kept them bound to the old module).
 *  - A load that fails (top-level throw or timeout, a script without hooks) keeps the previous instance in use.
 *  - Instances are immutable values: a request holds the instance it started with for all its hooks.
 *  Owns: that bookkeeping and the require resolution. Leaves compiling to js-compile.ts and running to js-realm.ts. */

import type { Logger } from '../log.js'
import { compileJs, type CompiledJs } from './js-compile.js'
import type { RealmModule, RequireAnswer } from './js-realm-prelude.js'
import { describeThrown, type JsRealm } from './js-realm.js'
import { isScriptName, md5Hex, type LoadProblem } from './versions.js'

export type HookFunction = (ctx: object) => unknown

export interface JsHooks {
  readonly onRequest: HookFunction | null
  readonly onResponse: HookFunction | null
  readonly onLog: HookFunction | null
}

export interface JsInstance {
  readonly name: string
  readonly version: string
  /** The realm value of `module.exports`; hooks are called with it as `this`. */
  readonly exports: unknown
  /** For `script.<host>` names; null for modules. */
  readonly hooks: JsHooks | null
  /** Modules this one required while its top-level code ran. */
  readonly requires: ReadonlySet<string>
  /** Child logger bound to {script, version}. */
  readonly log: Logger
  readonly loadedAtMs: number
}

export interface JsInstallReport {
  /** Names whose instance was replaced this round: new versions and their dependents. */
  readonly loaded: readonly string[]
  readonly removed: readonly string[]
  /** Problems found this round (each also stays in `problems()` while its version is current). */
  readonly problems: readonly LoadProblem[]
}

interface SourceVersion {
  readonly source: string
  readonly version: string
}

/** One install's loads: what finished and what is running now (for cycles). */
interface LoadRound {
  readonly affected: ReadonlySet<string>
  readonly done: Map<string, JsInstance | null>
  readonly loading: Map<string, RealmModule>
  readonly problems: LoadProblem[]
}

/** The require calls one load made; `isLoading` turns false when its top-level code has finished. */
interface LoadRecord {
  readonly requires: Set<string>
  isLoading: boolean
}

export class JsModules {
  private sources = new Map<string, SourceVersion>()
  /** What a (re)load of each name runs: its newest version that compiled. A version that did not compile never
   *  replaces it, so a dependent reload of a script whose newest source is broken reloads the running version. */
  private readonly compiled = new Map<string, CompiledJs>()
  private readonly instances = new Map<string, JsInstance>()
  /** Modules each name required: the running instance's, plus those of a failed later attempt (so a module that
   *  failed because a dependency was missing is retried when that dependency arrives). */
  private readonly dependencies = new Map<string, ReadonlySet<string>>()
  private readonly failures = new Map<string, LoadProblem>()
  private round: LoadRound | null = null
  private loadDepth = 0

  constructor(private readonly realm: JsRealm, private readonly nowMs: () => number) {}

  instance(name: string): JsInstance | undefined {
    return this.instances.get(name)
  }

  /** Running instances of `script.<host>` names. */
  *scripts(): IterableIterator<JsInstance> {
    for (const instance of this.instances.values()) if (instance.hooks !== null) yield instance
  }

  runningVersions(): ReadonlyMap<string, JsInstance> {
    return this.instances
  }

  /** Versions that are current in the input but failed to compile or load. */
  problems(): readonly LoadProblem[] {
    return [...this.failures.values()]
  }

  /** Installs the complete set of active `js/` sources (name -> source). */
  install(sources: ReadonlyMap<string, string>): JsInstallReport {
    const next = new Map<string, SourceVersion>()
    for (const [name, source] of sources) next.set(name, { source, version: md5Hex(source) })
    const changed = new Set<string>()
    const problems: LoadProblem[] = []
    for (const [name, { source, version }] of next) {
      if (this.sources.get(name)?.version === version) continue
      this.failures.delete(name)
      const result = compileJs(name, source)
      if (result.ok) {
        this.compiled.set(name, result.compiled)
        changed.add(name)
      } else {
        problems.push(this.fail(name, version, 'SCRIPT_COMPILE_FAILED', result.error))
      }
    }
    const removed: string[] = []
    for (const name of this.sources.keys()) {
      if (next.has(name)) continue
      removed.push(name)
      changed.add(name)
    }
    this.sources = next
    for (const name of removed) {
      this.instances.delete(name)
      this.compiled.delete(name)
      this.dependencies.delete(name)
      this.failures.delete(name)
    }

    const affected = this.dependentsOf(changed)
    const round: LoadRound = { affected, done: new Map(), loading: new Map(), problems }
    this.round = round
    try {
      // Modules first, then scripts, each by name: a script's requires then find their modules already loaded.
      const order = [...affected].filter((name) => next.has(name))
        .sort((a, b) => Number(isScriptName(a)) - Number(isScriptName(b)) || (a < b ? -1 : a > b ? 1 : 0))
      for (const name of order) if (!round.done.has(name)) this.load(name, round)
    } finally {
      this.round = null
    }
    const loaded: string[] = []
    for (const [name, instance] of round.done) {
      if (instance === null) continue
      this.instances.set(name, instance)
      this.failures.delete(name)
      loaded.push(name)
    }
    return { loaded, removed, problems }
  }

  /** `changed` plus every name whose recorded requires reach one of them. */
  private dependentsOf(changed: ReadonlySet<string>): Set<string> {
    const affected = new Set(changed)
    const pending = [...changed]
    while (pending.length > 0) {
      const name = pending.pop() as string
      for (const [dependent, requires] of this.dependencies) {
        if (requires.has(name) && !affected.has(dependent)) {
          affected.add(dependent)
          pending.push(dependent)
        }
      }
    }
    return affected
  }

  private fail(name: string, version: string, code: LoadProblem['code'], message: string): LoadProblem {
    const problem: LoadProblem = { name, version, code, message, timeMs: this.nowMs() }
    this.failures.set(name, problem)
    return problem
  }

  /** Loads one name in the current round and records the outcome in `round.done` (null on failure). */
  private load(name: string, round: LoadRound): void {
    const compiled = this.compiled.get(name)
    if (compiled === undefined || !this.sources.has(name)) return
    const realm = this.realm
    const module = realm.api.newModule()
    const record: LoadRecord = { requires: new Set(), isLoading: true }
    const log = realm.loggerFor(name, compiled.version)
    const isOutermost = this.loadDepth === 0
    round.loading.set(name, module)
    this.loadDepth++
    try {
      realm.runModule(compiled, module, realm.api.makeRequire((required) => this.resolve(required, record)),
        realm.api.makeConsole(log), isOutermost)
      record.isLoading = false
      const hooks = isScriptName(name) ? readHooks(module.exports) : null
      round.done.set(name, {
        name, version: compiled.version, exports: module.exports, hooks, requires: record.requires, log,
        loadedAtMs: this.nowMs(),
      })
      this.dependencies.set(name, record.requires)
    } catch (err) {
      const message = this.realm.isTimeout(err)
        ? `${name}: top-level code ran for more than ${this.realm.budgetMs} ms (scripts.timeout_ms)`
        : `${name}: ${loadFailureText(err)}`
      this.recordLoadFailure(name, compiled.version, message, record.requires, round)
      if (isOutermost) {
        // A vm timeout unwinds nested loads without running their catch blocks: fail them here.
        for (const stale of round.loading.keys()) {
          if (!round.done.has(stale)) this.recordLoadFailure(stale, this.compiled.get(stale)?.version ?? '', message, new Set(), round)
        }
      }
    } finally {
      record.isLoading = false
      round.loading.delete(name)
      this.loadDepth = isOutermost ? 0 : this.loadDepth - 1
    }
  }

  private recordLoadFailure(name: string, version: string, message: string, attempted: ReadonlySet<string>,
    round: LoadRound): void {
    round.done.set(name, null)
    const running = this.instances.get(name)?.requires
    this.dependencies.set(name, running === undefined ? attempted : new Set([...running, ...attempted]))
    round.problems.push(this.fail(name, version, 'SCRIPT_LOAD_FAILED', message))
  }

  /** `require(name)` from a module: during a load (top-level code) or later, from a hook. */
  private resolve(name: string, record: LoadRecord): RequireAnswer {
    if (isScriptName(name)) return { ok: false, error: this.missingText(name) }
    const round = this.round
    if (record.isLoading) record.requires.add(name)
    if (round !== null) {
      const partial = round.loading.get(name)
      if (partial !== undefined) return { ok: true, exports: partial.exports }   // a cycle: partial exports, as Node
      if (round.affected.has(name) && !round.done.has(name)) this.load(name, round)
      const fresh = round.done.get(name)
      if (fresh !== undefined && fresh !== null) return { ok: true, exports: fresh.exports }
    }
    const instance = this.instances.get(name)
    if (instance !== undefined) return { ok: true, exports: instance.exports }
    return { ok: false, error: this.missingText(name) }
  }

  private missingText(name: string): string {
    if (isScriptName(name)) return `module '${name}' not found: ${name} is a per-host script; put shared code in a module`
    const failure = this.failures.get(name)
    if (failure !== undefined) return `module '${name}' failed to load (${failure.message})`
    return `module '${name}' not found (only js/ modules can be required)`
  }
}

function loadFailureText(err: unknown): string {
  const { message, stack } = describeThrown(err)
  // The first stack frame inside the module tells the user where; the rest is the loader.
  const frame = stack?.split('\n').map((line) => line.trim()).find((line) => line.startsWith('at ') && line.includes('js/'))
  return frame === undefined ? message : `${message} (${frame})`
}

/** A script must export at least one hook, and each exported hook must be a function (scripts.md §5). */
function readHooks(exports: unknown): JsHooks {
  if ((typeof exports !== 'object' && typeof exports !== 'function') || exports === null) {
    throw new Error(`a per-host script must export hooks (exports.onRequest = (ctx) => { ... }), but module.exports is ${exports === null ? 'null' : typeof exports}`)
  }
  const source = exports as Record<string, unknown>
  const hook = (key: 'onRequest' | 'onResponse' | 'onLog'): HookFunction | null => {
    const value = source[key]
    if (value === undefined || value === null) return null
    if (typeof value !== 'function') throw new Error(`exports.${key} must be a function, got ${typeof value}`)
    return value as HookFunction
  }
  const hooks = { onRequest: hook('onRequest'), onResponse: hook('onResponse'), onLog: hook('onLog') }
  if (hooks.onRequest === null && hooks.onResponse === null && hooks.onLog === null) {
    throw new Error('exports none of onRequest, onResponse and onLog; a per-host script needs at least one')
  }
  return hooks
}

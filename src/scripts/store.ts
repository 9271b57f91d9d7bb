/** The script store of one process (scripts.md §2, §3) and its ScriptHost face for the data path (§4).
 *  - `install(sources)` takes the complete active sources of both runtimes (the integrator converts Consul state;
 *    staged keys are not included), compiles what changed, loads JS, hands Lua modules to lua-compat, and swaps the
 *    per-host table whole. Requests that already began keep the versions they began with.
 *  - `global_version` per runtime counts installs that changed that runtime's active set (name -> md5).
 *  - A version that fails to compile or load is listed in `catalog().errors` and logged once; its previous version
 *    keeps running, and a host script that never loaded is skipped (fail-open, as Slardar).
 *  - `scripts.enable_lua` / `enable_js` false: that runtime runs nothing; its sources are still listed.
 *  Owns: versions, the host table, the catalog. Leaves Lua to lua-scripts.ts and lua-compat, JS to js-modules.ts,
 *  per-request work to host-run.ts. */

import { createLuaRuntime, type LuaRuntime, type ModuleLoadError } from '../../lua-compat/index.js'
import type { Config } from '../config/index.js'
import type { Logger } from '../log.js'
import { PRODUCT_VERSION } from '../version.js'
import type { HostScripts, ScriptHost } from './contract.js'
import { type ScriptErrorCount, ScriptErrorCounts } from './error-counts.js'
import { ScriptStoreClosedError } from './errors.js'
import { HostEntry, type LuaScriptVersion, type RunServices } from './host-run.js'
import { compileJs } from './js-compile.js'
import { JsModules, type JsInstance } from './js-modules.js'
import { describeThrown, JsRealm } from './js-realm.js'
import { LuaScripts } from './lua-scripts.js'
import { md5Hex, SCRIPT_PREFIX, type LoadProblem } from './versions.js'

export type ScriptRuntimeName = 'lua' | 'js'

/** The complete active sources of each runtime: name -> source text. */
export interface ScriptSources {
  readonly lua: ReadonlyMap<string, string>
  readonly js: ReadonlyMap<string, string>
}

export interface ActiveScript {
  readonly name: string
  readonly version: string
  /** Epoch ms when this process applied the version (GET /lua `time`). */
  readonly timeMs: number
}

export interface ScriptLoadError extends LoadProblem {
  readonly runtime: ScriptRuntimeName
}

/** What GET /lua and GET /js report besides `commit_version` (admin-api.md §7). Sorted by name. */
export interface ScriptCatalog {
  readonly globalVersion: number
  readonly active: readonly ActiveScript[]
  readonly errors: readonly ScriptLoadError[]
}

export interface RuntimeInstallReport {
  readonly globalVersion: number
  /** The runtime's active set (name -> md5) differs from the previous install. */
  readonly hasChanged: boolean
  /** Problems found by this install; the worker reports them to the primary. */
  readonly errors: readonly ScriptLoadError[]
}

export interface InstallReport {
  readonly lua: RuntimeInstallReport
  readonly js: RuntimeInstallReport
}

export interface ScriptStoreOptions {
  readonly scripts: Config['scripts']
  readonly workerId: number
  readonly workerCount: number
  /** Parent of the script loggers (console, ctx.log, ngx.log) and of the store's own error lines. */
  readonly log: Logger
  /** Dynamic config (scripts.md §8): the parsed value of KV `<prefix><key>` from the live snapshot, or undefined.
   *  Synchronous; return the same object while the value is unchanged. */
  readonly readConfig: (key: string) => unknown
  /** Wall clock for catalog times and Lua's ngx.time; Date.now by default. */
  readonly nowMs?: () => number
  /** A load error found outside install(): a Lua module failing on its first require in a request. */
  readonly onLoadError?: (error: ScriptLoadError) => void
}

/** name -> md5 of the last install's input, with the time each version was first seen. */
class InputVersions {
  private versions = new Map<string, ActiveScript>()

  /** Records the next input; true when it differs from the previous one. */
  apply(sources: ReadonlyMap<string, string>, nowMs: number): boolean {
    const next = new Map<string, ActiveScript>()
    let hasChanged = sources.size !== this.versions.size
    for (const [name, source] of sources) {
      const version = md5Hex(source)
      const previous = this.versions.get(name)
      if (previous?.version === version) next.set(name, previous)
      else {
        next.set(name, { name, version, timeMs: nowMs })
        hasChanged = true
      }
    }
    this.versions = next
    return hasChanged
  }

  list(): ActiveScript[] {
    return [...this.versions.values()]
  }
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

export class ScriptStore implements ScriptHost {
  private hosts = new Map<string, HostEntry>()
  private readonly inputs = { lua: new InputVersions(), js: new InputVersions() }
  private readonly globalVersions = { lua: 0, js: 0 }
  private readonly services: RunServices
  private readonly errorCounts = new ScriptErrorCounts()
  private readonly lua: LuaScripts | null
  private readonly js: JsModules | null
  private readonly realm: JsRealm | null
  private readonly nowMs: () => number
  private isClosed = false

  /** Creates the store with its Lua runtime (always: it also serves check()) and, when JS is enabled, its realm. */
  static async create(options: ScriptStoreOptions): Promise<ScriptStore> {
    let store: ScriptStore | null = null
    const scripts = options.scripts
    const luaRuntime = await createLuaRuntime({
      timeoutMs: scripts.timeout_ms,
      asyncTimeoutMs: scripts.async_timeout_ms,
      // The schema allows 0; lua-compat's LRU needs at least one slot, and one slot caches next to nothing.
      regexCacheSize: Math.max(1, scripts.regex_cache),
      sharedDicts: scripts.shared_dicts,
      workerId: options.workerId,
      workerCount: options.workerCount,
      productVersion: PRODUCT_VERSION,
      log: options.log.child({ runtime: 'lua' }),
      readConfig: options.readConfig,
      ...(options.nowMs === undefined ? {} : { nowMs: options.nowMs }),
      onModuleLoadError: (error) => store?.recordLuaModuleLoadError(error),
    })
    store = new ScriptStore(options, luaRuntime)
    return store
  }

  private constructor(private readonly options: ScriptStoreOptions, private readonly luaRuntime: LuaRuntime) {
    const scripts = options.scripts
    this.nowMs = options.nowMs ?? Date.now
    this.lua = scripts.enable_lua ? new LuaScripts(luaRuntime, this.nowMs) : null
    this.realm = scripts.enable_js
      ? new JsRealm({ timeoutMs: scripts.timeout_ms, readConfig: options.readConfig, log: options.log })
      : null
    this.js = this.realm === null ? null : new JsModules(this.realm, this.nowMs)
    this.services = {
      lua: this.lua === null ? null : luaRuntime,
      realm: this.realm,
      asyncTimeoutMs: scripts.async_timeout_ms,
      log: options.log,
      errorCounts: this.errorCounts,
    }
  }

  // ---- ScriptHost (the data path) ----

  forHost(host: string): HostScripts | null {
    return this.hosts.get(host) ?? null
  }

  // ---- installs ----

  install(sources: ScriptSources): InstallReport {
    if (this.isClosed) throw new ScriptStoreClosedError('install')
    const nowMs = this.nowMs()
    const isLuaChanged = this.inputs.lua.apply(sources.lua, nowMs)
    const isJsChanged = this.inputs.js.apply(sources.js, nowMs)
    const luaProblems = isLuaChanged && this.lua !== null ? this.lua.install(sources.lua).problems : []
    const jsProblems = isJsChanged && this.js !== null ? this.js.install(sources.js).problems : []
    if (isLuaChanged) this.globalVersions.lua++
    if (isJsChanged) this.globalVersions.js++
    if (isLuaChanged || isJsChanged) this.rebuildHosts()
    return {
      lua: this.reportOf('lua', isLuaChanged, luaProblems),
      js: this.reportOf('js', isJsChanged, jsProblems),
    }
  }

  private reportOf(runtime: ScriptRuntimeName, hasChanged: boolean, problems: readonly LoadProblem[]): RuntimeInstallReport {
    const errors = problems.map((problem) => ({ runtime, ...problem }))
    for (const error of errors) this.logLoadError(error)
    return { globalVersion: this.globalVersions[runtime], hasChanged, errors }
  }

  /** Logs and counts one failed compile or load of a version (install compiles only what changed). */
  private logLoadError(error: ScriptLoadError): void {
    this.errorCounts.count(error.runtime, error.name, 'load')
    this.options.log.error({ runtime: error.runtime, script: error.name, version: error.version, code: error.code },
      `${error.runtime}/${error.name}: ${error.message}; the previous version, if any, keeps running`)
  }

  private recordLuaModuleLoadError(error: ModuleLoadError): void {
    const problem = this.lua?.recordModuleLoadError(error)
    if (problem === undefined || problem === null) return
    const loadError: ScriptLoadError = { runtime: 'lua', ...problem }
    this.logLoadError(loadError)
    this.options.onLoadError?.(loadError)
  }

  /** One entry per routing host with a running script in an enabled runtime; built whole, then swapped. */
  private rebuildHosts(): void {
    const parts = new Map<string, { lua: LuaScriptVersion | null; js: JsInstance | null }>()
    const partsOf = (name: string): { lua: LuaScriptVersion | null; js: JsInstance | null } => {
      const host = name.slice(SCRIPT_PREFIX.length)
      let entry = parts.get(host)
      if (entry === undefined) {
        entry = { lua: null, js: null }
        parts.set(host, entry)
      }
      return entry
    }
    if (this.lua !== null) for (const [name, script] of this.lua.runningScripts()) partsOf(name).lua = script
    if (this.js !== null) for (const instance of this.js.scripts()) partsOf(instance.name).js = instance
    const hosts = new Map<string, HostEntry>()
    for (const [host, { lua, js }] of parts) hosts.set(host, new HostEntry(this.services, lua, js))
    this.hosts = hosts
  }

  // ---- views for the admin API and /status ----

  catalog(runtime: ScriptRuntimeName): ScriptCatalog {
    let active: ActiveScript[]
    let problems: readonly LoadProblem[] = []
    if (runtime === 'lua' && this.lua !== null) {
      active = this.lua.running()
      problems = this.lua.problems()
    } else if (runtime === 'js' && this.js !== null) {
      active = [...this.js.runningVersions().values()].map((i) => ({ name: i.name, version: i.version, timeMs: i.loadedAtMs }))
      problems = this.js.problems()
    } else {
      active = this.inputs[runtime].list()   // disabled: listed, never compiled or run
    }
    return {
      globalVersion: this.globalVersions[runtime],
      active: active.sort(byName),
      errors: problems.map((problem) => ({ runtime, ...problem })).sort(byName),
    }
  }

  /** `slardar_script_errors_total`: request failures by script and kind, and load failures, since the store began. */
  scriptErrorCounts(): ScriptErrorCount[] {
    return this.errorCounts.list()
  }

  /** The compile check of POST /lua and /js and of KV arrivals: null when `source` compiles, else the message. */
  check(runtime: ScriptRuntimeName, name: string, source: string): string | null {
    if (this.isClosed) throw new ScriptStoreClosedError('check')
    if (runtime === 'js') {
      const result = compileJs(name, source)
      return result.ok ? null : result.error
    }
    const result = this.luaRuntime.check(name, source)
    return result.ok ? null : result.error
  }

  /** True when `promise` was created by JS plugin code. For the process's unhandledRejection handler: a script that
   *  drops a rejected promise must not take the worker down (Node's default is to exit). Logs it when true. */
  handleUnhandledRejection(reason: unknown, promise: unknown): boolean {
    if (this.realm === null || !this.realm.ownsPromise(promise)) return false
    const { message, stack } = describeThrown(reason)
    this.options.log.error({ runtime: 'js', err: { message, stack } },
      `a JS plugin left a promise rejection unhandled: ${message}`)
    return true
  }

  close(): void {
    if (this.isClosed) return
    this.isClosed = true
    this.hosts = new Map()
    // Closing the runtime frees every chunk; requests still running end with a script error.
    this.luaRuntime.close()
  }
}

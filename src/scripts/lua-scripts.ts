/** The Lua side of the store (scripts.md §2, §3): compiled `script.<host>` chunks, one per version, and the `lua/`
 *  modules handed to lua-compat, which loads them on first require and reloads dependents itself.
 *  A source that does not compile leaves its previous version running; load failures (reloads reported by
 *  `installModules`, first-require failures reported by the runtime's callback) are kept as problems while their
 *  version is current. Owns: which Lua versions run. Leaves running them to lua-compat and host-run.ts. */

import type { LuaRuntime, ModuleLoadError } from '../../lua-compat/index.js'
import { LuaScriptVersion } from './host-run.js'
import { isScriptName, md5Hex, type LoadProblem } from './versions.js'

interface InstalledModule {
  readonly source: string
  readonly version: string
  readonly loadedAtMs: number
}

export interface LuaInstallReport {
  readonly problems: readonly LoadProblem[]
}

export class LuaScripts {
  /** Input version of every name, compiled or not. */
  private sources = new Map<string, string>()
  private readonly scripts = new Map<string, LuaScriptVersion>()
  private readonly modules = new Map<string, InstalledModule>()
  private readonly failures = new Map<string, LoadProblem>()

  constructor(private readonly runtime: LuaRuntime, private readonly nowMs: () => number) {}

  script(name: string): LuaScriptVersion | undefined {
    return this.scripts.get(name)
  }

  runningScripts(): ReadonlyMap<string, LuaScriptVersion> {
    return this.scripts
  }

  /** Running versions of every name: scripts and modules, with the time this process applied them. */
  running(): Array<{ name: string; version: string; timeMs: number }> {
    const out: Array<{ name: string; version: string; timeMs: number }> = []
    for (const [name, script] of this.scripts) out.push({ name, version: script.version, timeMs: script.loadedAtMs })
    for (const [name, module] of this.modules) out.push({ name, version: module.version, timeMs: module.loadedAtMs })
    return out
  }

  problems(): readonly LoadProblem[] {
    return [...this.failures.values()]
  }

  /** Installs the complete set of active `lua/` sources (name -> source). */
  install(sources: ReadonlyMap<string, string>): LuaInstallReport {
    const problems: LoadProblem[] = []
    const next = new Map<string, string>()
    let haveModulesChanged = false
    for (const [name, source] of sources) {
      const version = md5Hex(source)
      next.set(name, version)
      if (this.sources.get(name) === version) continue
      this.failures.delete(name)
      if (isScriptName(name)) {
        const compiled = this.runtime.compile(name, source)
        if (!compiled.ok) {
          problems.push(this.fail(name, version, 'SCRIPT_COMPILE_FAILED', compiled.error))
          continue
        }
        const previous = this.scripts.get(name)
        this.scripts.set(name, new LuaScriptVersion(compiled.chunk, this.runtime, this.nowMs()))
        previous?.retire()
      } else {
        const checked = this.runtime.check(name, source)
        if (!checked.ok) {
          problems.push(this.fail(name, version, 'SCRIPT_COMPILE_FAILED', checked.error))
          continue
        }
        this.modules.set(name, { source, version, loadedAtMs: this.nowMs() })
        haveModulesChanged = true
      }
    }
    for (const name of this.sources.keys()) {
      if (next.has(name)) continue
      this.failures.delete(name)
      this.scripts.get(name)?.retire()
      this.scripts.delete(name)
      if (this.modules.delete(name)) haveModulesChanged = true
    }
    this.sources = next
    if (haveModulesChanged) {
      const report = this.runtime.installModules(new Map([...this.modules].map(([name, module]) => [name, module.source])))
      for (const error of report.errors) problems.push(this.fail(error.name, error.version, 'SCRIPT_LOAD_FAILED', error.message))
    }
    return { problems }
  }

  /** A module failed on its first require in a request (lua-compat's onModuleLoadError). */
  recordModuleLoadError(error: ModuleLoadError): LoadProblem | null {
    if (this.sources.get(error.name) !== error.version) return null   // a version no longer current
    return this.fail(error.name, error.version, 'SCRIPT_LOAD_FAILED', error.message)
  }

  private fail(name: string, version: string, code: LoadProblem['code'], message: string): LoadProblem {
    const problem: LoadProblem = { name, version, code, message, timeMs: this.nowMs() }
    this.failures.set(name, problem)
    return problem
  }
}

/** The compile check without a running store (scripts.md §3, admin-api.md §7): the primary checks KV arrivals and
 *  the admin API checks POST bodies before anything runs. Lua: lua-compat's parse plus literal ngx.re patterns, on
 *  a runtime of its own. JS: acorn parse plus budget instrumentation plus V8 compile (js-compile.ts). */

import { createLuaRuntime, type LuaRuntime } from '../../lua-compat/index.js'
import { createSilentLogger } from '../log.js'
import { PRODUCT_VERSION } from '../version.js'
import { compileJs } from './js-compile.js'
import type { ScriptRuntimeName } from './store.js'

/** `<name>:<line>[:<column>]: <message>` when `source` does not compile, else null. */
export type ScriptCheck = (runtime: ScriptRuntimeName, name: string, source: string) => string | null

export interface ScriptChecker {
  readonly check: ScriptCheck
  close(): void
}

/** The JS half needs no runtime, so it is available synchronously. */
export function checkJsSource(name: string, source: string): string | null {
  const result = compileJs(name, source)
  return result.ok ? null : result.error
}

/** Creating the Lua runtime is asynchronous (WebAssembly), so the checker is created once and then used
 *  synchronously. Nothing runs: the runtime only parses. */
export async function createScriptChecker(): Promise<ScriptChecker> {
  const lua: LuaRuntime = await createLuaRuntime({
    timeoutMs: 50,
    asyncTimeoutMs: 5000,
    regexCacheSize: 1,
    sharedDicts: {},
    workerId: 0,
    workerCount: 1,
    productVersion: PRODUCT_VERSION,
    log: createSilentLogger(),
    readConfig: () => undefined,
  })
  return {
    check(runtime: ScriptRuntimeName, name: string, source: string): string | null {
      if (runtime === 'js') return checkJsSource(name, source)
      const result = lua.check(name, source)
      return result.ok ? null : result.error
    },
    close: () => lua.close(),
  }
}

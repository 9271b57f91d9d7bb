/** lua-compat's public face: the Lua 5.4 runtime (wasmoon) with the ngx/errno/utils/slardar shim that runs
 *  Slardar's Lua scripts (scripts.md §6-§9). Other folders import from this file only. See README.md here for
 *  how the proxy calls it per request. */

import { LuaRuntime } from './runtime.js'
import type { LuaRuntimeOptions } from './types.js'

export { LuaRuntime } from './runtime.js'
export { LuaRuntimeError, SCRIPT_ERROR, SCRIPT_TIMEOUT } from './errors.js'
export type {
  CheckResult, CompileResult, HeaderChange, LuaChunk, LuaLog, LuaRuntimeOptions, ModuleInstallReport, ModuleLoadError,
  RequestChanges, RequestView, ScriptOutcome,
} from './types.js'

/** One runtime per worker process (one Lua state; requests run as coroutines in it). */
export function createLuaRuntime(options: LuaRuntimeOptions): Promise<LuaRuntime> {
  return LuaRuntime.create(options)
}

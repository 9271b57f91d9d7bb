/** Errors of lua-compat: the stable codes of script failures (proxy.md §6) and the one thrown error class.
 *  Script failures are values (ScriptOutcome kind 'error'); only broken invariants throw LuaRuntimeError. */

export const SCRIPT_ERROR = { code: 'LUA_SCRIPT_ERROR', xErrorCode: 50000001, msg: 'script error' } as const
export const SCRIPT_TIMEOUT = { code: 'LUA_SCRIPT_TIMEOUT', xErrorCode: 50000002, msg: 'script timeout' } as const

export class LuaRuntimeError extends Error {
  readonly code = 'LUA_RUNTIME_FAILED'
  constructor(message: string, options?: { cause?: unknown }) {
    super(`lua-compat: ${message}`, options)
  }
}

/** Errors of the scripts area, each with a stable `SCRIPT_` code (style.md, Errors), and the two failure codes a
 *  request can end with (proxy.md §6). Expected bad input is not thrown: compile problems are strings
 *  (`<name>:<line>:<column>: <message>`), load problems are `ScriptLoadError` values, request failures are
 *  `ScriptFailure` values (contract.ts).
 *
 *  | code                     | when |
 *  |--------------------------|------|
 *  | `SCRIPT_COMPILE_FAILED`  | a source did not parse or compile; its previous version keeps running |
 *  | `SCRIPT_LOAD_FAILED`     | a JS module's top level threw or timed out, a script exports no hook, a Lua module failed |
 *  | `SCRIPT_STORE_CLOSED`    | the store was used after close() (a wiring bug) |
 */

/** Every code with its one-line meaning; a test keeps this list and the header table in step. */
export const SCRIPT_ERROR_CODES = Object.freeze({
  SCRIPT_COMPILE_FAILED: 'a source did not parse or compile; its previous version keeps running',
  SCRIPT_LOAD_FAILED: 'a module or script failed while loading; its previous instance keeps running',
  SCRIPT_STORE_CLOSED: 'the script store was used after close()',
})

export type ScriptErrorCode = keyof typeof SCRIPT_ERROR_CODES

/** proxy.md §6: a script threw, rejected or failed to answer properly. */
export const SCRIPT_ERROR = Object.freeze({ xErrorCode: 50000001, msg: 'script error' } as const)
/** proxy.md §6: a script exceeded scripts.timeout_ms or scripts.async_timeout_ms. */
export const SCRIPT_TIMEOUT = Object.freeze({ xErrorCode: 50000002, msg: 'script timeout' } as const)

export class ScriptStoreClosedError extends Error {
  readonly code = 'SCRIPT_STORE_CLOSED'
  constructor(operation: string) {
    super(`scripts: ${operation} called after the script store was closed; create a new store instead`)
  }
}

/** Public face of scripts (scripts.md): the script store, the JS plugin runtime and the entry into lua-compat.
 *  Other folders import from here only. */
export type {
  HeaderChange, HostScripts, RequestChanges, RequestDecision, ScriptFailure, ScriptHost, ScriptRequest, ScriptResponse, ScriptRun,
} from './contract.js'

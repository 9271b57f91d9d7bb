/** Public face of scripts (scripts.md): the script store, the JS plugin runtime and the entry into lua-compat.
 *  Other folders import from here only.
 *
 *  ```ts
 *  const scripts = await ScriptStore.create({ scripts: config.scripts, workerId, workerCount, log, readConfig })
 *  scripts.install({ lua: activeLuaSources, js: activeJsSources })   // after every change of the active sets
 *  new HttpProxy({ ..., scripts })                                     // ScriptStore implements ScriptHost
 *  scripts.catalog('js')                                               // GET /js: global_version, modules, errors
 *  ``` */
export type {
  HeaderChange, HostScripts, RequestChanges, RequestDecision, ScriptFailure, ScriptHost, ScriptRequest, ScriptResponse, ScriptRun,
} from './contract.js'
export { checkJsSource, createScriptChecker, type ScriptCheck, type ScriptChecker } from './check.js'
export { ERRNO, type ErrnoEntry } from './errno.js'
export type { ScriptErrorCount, ScriptErrorKind } from './error-counts.js'
export { SCRIPT_ERROR, SCRIPT_ERROR_CODES, SCRIPT_TIMEOUT, ScriptStoreClosedError, type ScriptErrorCode } from './errors.js'
export {
  ScriptStore, type ActiveScript, type InstallReport, type RuntimeInstallReport, type ScriptCatalog, type ScriptLoadError,
  type ScriptRuntimeName, type ScriptSources, type ScriptStoreOptions,
} from './store.js'
export { isScriptName, md5Hex } from './versions.js'

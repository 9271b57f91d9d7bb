/** What a KV key below the prefix is (consul.md §1): an HTTP or stream upstream, an active or staged
 *  script, a commit version, dynamic config, or something we ignore or reject by name alone. Pure: the
 *  value is not looked at here; apply.ts parses it by class. */

export type ScriptRuntime = 'lua' | 'js'

export type KeyClass =
  | { readonly kind: 'http_upstream'; readonly name: string }
  | { readonly kind: 'stream_upstream'; readonly port: number }
  | { readonly kind: 'script'; readonly runtime: ScriptRuntime; readonly name: string }
  | { readonly kind: 'staged_script'; readonly runtime: ScriptRuntime; readonly name: string }
  | { readonly kind: 'commit_version'; readonly runtime: ScriptRuntime }
  | { readonly kind: 'dynamic'; readonly name: string }
  | { readonly kind: 'ignored'; readonly reason: string }
  /** Rejected by its name alone; listed in /status key_errors like a bad value. */
  | { readonly kind: 'invalid'; readonly message: string }

export interface KeyLayout {
  readonly upstreams_prefix: string
  readonly stream_upstreams_prefix: string
  readonly lua_prefix: string
  readonly js_prefix: string
}

export const NAME_PATTERN = /^[-_a-zA-Z0-9.]+$/
const PORT_PATTERN = /^[1-9]\d{0,4}$/
/** Lua built-ins a `lua/` module may not shadow (scripts.md §2). */
export const RESERVED_LUA_NAMES: ReadonlySet<string> = new Set(['cjson', 'cjson.safe', 'bit', 'table.new', 'table.clear'])
export const RESERVED_UPSTREAM_NAME = 'consul'

/** Why a script name is not acceptable, or null when it is (shared with the admin API). */
export function scriptNameProblem(runtime: ScriptRuntime, name: string): string | null {
  if (!NAME_PATTERN.test(name)) return `invalid name "${name}": must match [-_a-zA-Z0-9.]+`
  if (name.startsWith('.')) return `invalid name "${name}": must not start with "."`
  if (name === 'version') return `invalid name "${name}": "version" is the commit-version key`
  if (runtime === 'lua' && RESERVED_LUA_NAMES.has(name)) return `invalid name "${name}": reserved for the built-in Lua module`
  // Slardar accepted upper-case host scripts that could never match a lower-cased routing host.
  if (name.startsWith('script.') && name !== name.toLowerCase()) {
    return `invalid name "${name}": per-host script names must be lower-case (routing hosts are lower-cased)`
  }
  return null
}

/** Why an upstream name is not acceptable, or null when it is (shared with the admin API). */
export function upstreamNameProblem(name: string): string | null {
  if (!NAME_PATTERN.test(name)) return `invalid name "${name}": must match [-_a-zA-Z0-9.]+`
  if (name === RESERVED_UPSTREAM_NAME) return 'upstream name consul is reserved'
  return null
}

export function classifyKey(key: string, layout: KeyLayout): KeyClass {
  if (key === '' || key.endsWith('/')) return { kind: 'ignored', reason: 'folder key' }
  const slash = key.indexOf('/')
  const head = slash < 0 ? key : key.slice(0, slash)
  const rest = slash < 0 ? null : key.slice(slash + 1)
  if (head === 'lua_stream') return { kind: 'ignored', reason: "Slardar's stream scripts are not reproduced" }
  if (rest === null) return { kind: 'dynamic', name: key }

  if (head === layout.upstreams_prefix) {
    if (rest.includes('/')) return nestedKey(key)
    const problem = upstreamNameProblem(rest)
    return problem === null ? { kind: 'http_upstream', name: rest } : { kind: 'invalid', message: `${key}: ${problem}` }
  }
  if (head === layout.stream_upstreams_prefix) {
    if (rest.includes('/')) return nestedKey(key)
    if (!PORT_PATTERN.test(rest) || Number(rest) > 65535) {
      return { kind: 'invalid', message: `${key}: invalid port "${rest}": must be a decimal 1..65535 without a leading zero` }
    }
    return { kind: 'stream_upstream', port: Number(rest) }
  }
  const runtime: ScriptRuntime | null = head === layout.lua_prefix ? 'lua' : head === layout.js_prefix ? 'js' : null
  if (runtime === null) return { kind: 'dynamic', name: key }
  if (rest === 'version') return { kind: 'commit_version', runtime }
  if (rest.startsWith('.staged/')) {
    const name = rest.slice('.staged/'.length)
    if (name.includes('/')) return nestedKey(key)
    const problem = scriptNameProblem(runtime, name)
    return problem === null ? { kind: 'staged_script', runtime, name } : { kind: 'invalid', message: `${key}: ${problem}` }
  }
  if (rest.includes('/')) return nestedKey(key)
  const problem = scriptNameProblem(runtime, rest)
  return problem === null ? { kind: 'script', runtime, name: rest } : { kind: 'invalid', message: `${key}: ${problem}` }
}

function nestedKey(key: string): KeyClass {
  // Slardar flattened nested keys to their last segment, so two keys could collide (consul.md §1).
  return { kind: 'invalid', message: `${key}: nested keys are not allowed here; use one segment after the folder` }
}

/** Consul's key order: by UTF-8 bytes (listings come sorted so; the snapshot file and the logs keep that order). */
export function compareConsulKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

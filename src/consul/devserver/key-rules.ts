/** Which KV keys the server accepts (consul.md §17). Default: current Consul (1.21.6+, 1.22), which rejects `..`
 *  traversal and leading/trailing whitespace; `disable_kv_key_validation` accepts anything (≤ 1.21.4);
 *  `strict_keys` (ours, opt-in) also rejects a leading "/" and empty or "." segments, the subset every Consul version
 *  and client handles the same way. Only the 400 status is Consul's; the texts are ours and name the rule. */

export interface KeyRules {
  readonly isValidationDisabled: boolean
  readonly isStrict: boolean
}

const TRAVERSAL = /\.\.(\/|\\|%2f|%5c)/i

/** Null when the key is acceptable, else the reason, ready to be a 400 body. */
export function keyProblem(key: string, rules: KeyRules): string | null {
  if (!rules.isValidationDisabled) {
    if (TRAVERSAL.test(key) || key.endsWith('/..')) {
      return `Invalid key ${JSON.stringify(key)}: ".." path traversal is not allowed in KV keys`
    }
    if (/^\s|\s$/u.test(key)) return `Invalid key ${JSON.stringify(key)}: leading or trailing whitespace is not allowed in KV keys`
  }
  if (rules.isStrict) {
    if (key.startsWith('/')) return `Invalid key ${JSON.stringify(key)}: strict_keys forbids a leading "/"`
    // A single trailing "/" is a folder key or a listing prefix (`foo/?recurse`), so only inner segments count.
    const segments = (key.endsWith('/') ? key.slice(0, -1) : key).split('/')
    if (key !== '' && segments.some((segment) => segment === '' || segment === '.')) {
      return `Invalid key ${JSON.stringify(key)}: strict_keys forbids empty or "." path segments`
    }
  }
  return null
}

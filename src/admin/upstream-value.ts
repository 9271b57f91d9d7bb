/** Upstream values as the admin API shows and builds them (admin-api.md §6), pure: the display form
 *  (Slardar's normalised `cluster` form with secrets masked), putting back masked secrets a client sends
 *  unchanged, the POST `servers` merging rule, and a nesting bound so no later recursive walk (masking,
 *  JSON.stringify) can overflow the stack on a hostile body. Validation itself is checkups' parseUpstreamJson. */

export const MASKED = '******'
/** Deep enough for any real upstream (cluster → level → server → field is 4); far below stack limits. */
export const MAX_NESTING = 32

const SECRET_FIELDS: ReadonlySet<string> = new Set(['pass', 'password', 'token', 'secret'])

type JsonObject = Record<string, unknown>

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isSecretField(name: string): boolean {
  return SECRET_FIELDS.has(name.toLowerCase())
}

/** True when `value` nests objects/arrays deeper than `MAX_NESTING`; stops as soon as it knows. */
export function isNestedTooDeeply(value: unknown, depth = 0): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (depth >= MAX_NESTING) return true
  const children = Array.isArray(value) ? value : Object.values(value)
  return children.some((child) => isNestedTooDeeply(child, depth + 1))
}

/** Slardar showed definitions with `servers` turned into a one-level `cluster`; other fields stay as written. */
export function toClusterForm(value: unknown): unknown {
  if (!isJsonObject(value) || !Object.hasOwn(value, 'servers') || Object.hasOwn(value, 'cluster')) return value
  const out: JsonObject = {}
  for (const [field, fieldValue] of Object.entries(value)) {
    if (field === 'servers') setField(out, 'cluster', [{ servers: fieldValue }])
    else setField(out, field, fieldValue)
  }
  return out
}

/** A copy with every field named pass, password, token or secret (any depth, any case) shown as "******". */
export function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets)
  if (!isJsonObject(value)) return value
  const out: JsonObject = {}
  for (const [field, fieldValue] of Object.entries(value)) setField(out, field, isSecretField(field) ? MASKED : maskSecrets(fieldValue))
  return out
}

/** What GET /upstreams and GET /upstream/<name> show for a stored value. */
export function displayForm(value: unknown): unknown {
  return maskSecrets(toClusterForm(value))
}

export type Restored = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly path: string }

/** Replaces each secret field the client sent back as "******" with the stored value at the same place.
 *  `stored` is the live value as stored (null when there is none); a path is looked up as the client wrote
 *  it and, for the `servers` form, at the same server of the displayed one-level `cluster`. */
export function restoreMaskedSecrets(body: unknown, stored: unknown): Restored {
  const shown = toClusterForm(stored)
  let missing: string | null = null
  const walk = (value: unknown, path: readonly (string | number)[]): unknown => {
    if (Array.isArray(value)) return value.map((item, i) => walk(item, [...path, i]))
    if (!isJsonObject(value)) return value
    const out: JsonObject = {}
    for (const [field, fieldValue] of Object.entries(value)) {
      const fieldPath = [...path, field]
      if (isSecretField(field) && fieldValue === MASKED) {
        const kept = lookup(stored, fieldPath) ?? lookup(shown, fieldPath) ?? lookup(shown, asClusterPath(fieldPath))
        if (kept === undefined) missing ??= formatPath(fieldPath)
        setField(out, field, kept)
      } else {
        setField(out, field, walk(fieldValue, fieldPath))
      }
    }
    return out
  }
  const value = walk(body, [])
  return missing === null ? { ok: true, value } : { ok: false, path: missing }
}

/** POST|PUT with `servers` (Slardar semantics): the live value without `servers` and `cluster`, overlaid
 *  with every body field. The result keeps the one-level `servers` form. */
export function mergeServersBody(live: unknown, body: JsonObject): JsonObject {
  const out: JsonObject = {}
  if (isJsonObject(live)) {
    for (const [field, value] of Object.entries(live)) if (field !== 'servers' && field !== 'cluster') setField(out, field, value)
  }
  for (const [field, value] of Object.entries(body)) setField(out, field, value)
  return out
}

/** An own data property even for a field named `__proto__` (json5 keeps such keys as data; `out[k] = v` would
 *  change the prototype instead and drop the field). */
function setField(target: JsonObject, field: string, value: unknown): void {
  Object.defineProperty(target, field, { value, enumerable: true, writable: true, configurable: true })
}

function lookup(value: unknown, path: readonly (string | number)[]): unknown {
  let current: unknown = value
  for (const step of path) {
    if (typeof step === 'number') {
      if (!Array.isArray(current)) return undefined
      current = current[step]
    } else {
      if (!isJsonObject(current) || !Object.hasOwn(current, step)) return undefined
      current = current[step]
    }
  }
  return current
}

function asClusterPath(path: readonly (string | number)[]): readonly (string | number)[] {
  return path[0] === 'servers' ? ['cluster', 0, ...path] : path
}

/** `servers[1].http_opts.token`, the way upstreams.md §1.4 writes paths. */
function formatPath(path: readonly (string | number)[]): string {
  return path.map((step, i) => (typeof step === 'number' ? `[${step}]` : i === 0 ? step : `.${step}`)).join('')
}

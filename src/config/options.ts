/** Option builders for the config schema: each option knows its default, how to check a value and a
 *  one-line description. The schema tree (schema.ts) is built from these; the loader walks the tree.
 *  A check returns the accepted value or a problem text; paths are added by the loader. */

import {
  type HostPort,
  type Parsed,
  parseDurationSec,
  parseHostPort,
  parseSizeBytes,
  show,
} from './values.js'

export interface OptionSpec<T> {
  readonly kind: 'option'
  readonly defaultValue: T
  readonly description: string
  /** Shown as "******" by check-config and /status. */
  readonly isSecret: boolean
  check(value: unknown): Parsed<T>
}

export interface SchemaTree {
  readonly [key: string]: OptionSpec<unknown> | SchemaTree
}

/** The validated value type of a schema subtree. */
export type ValueOf<S> = S extends OptionSpec<infer T>
  ? T
  : S extends SchemaTree
    ? { readonly [K in keyof S]: ValueOf<S[K]> }
    : never

export function isOption(node: OptionSpec<unknown> | SchemaTree): node is OptionSpec<unknown> {
  return (node as OptionSpec<unknown>).kind === 'option'
}

function option<T>(defaultValue: T, description: string, check: (value: unknown) => Parsed<T>, isSecret = false): OptionSpec<T> {
  return { kind: 'option', defaultValue, description, isSecret, check }
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = (problem: string): Parsed<never> => ({ ok: false, problem })

function withMaxSec(parsed: Parsed<number>, maxSec: number, maxText: string): Parsed<number> {
  if (parsed.ok && parsed.value > maxSec) return bad(`must be at most ${maxText}, got ${parsed.value} s`)
  return parsed
}

export const opt = {
  boolean: (defaultValue: boolean, description: string) =>
    option(defaultValue, description, (v) => (typeof v === 'boolean' ? ok(v) : bad(`expected true or false, got ${show(v)}`))),

  integer: (defaultValue: number, min: number, description: string, max = Number.MAX_SAFE_INTEGER) =>
    option(defaultValue, description, (v) =>
      typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
        ? ok(v)
        : bad(`expected an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`}, got ${show(v)}`)),

  number: (defaultValue: number, min: number, max: number, description: string) =>
    option(defaultValue, description, (v) =>
      typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max
        ? ok(v)
        : bad(`expected a number ${min}..${max}, got ${show(v)}`)),

  /** Seconds; numbers or strings with units. `positive` rejects 0 where 0 would mean "wait forever" by accident. */
  durationSec: (defaultValue: number, description: string, options: { positive?: boolean; maxSec?: number; maxText?: string } = {}) =>
    option(defaultValue, description, (v) => {
      const parsed = parseDurationSec(v)
      if (parsed.ok && options.positive === true && parsed.value <= 0) return bad(`must be greater than 0, got ${show(v)}`)
      return options.maxSec === undefined ? parsed : withMaxSec(parsed, options.maxSec, options.maxText ?? `${options.maxSec} s`)
    }),

  sizeBytes: (defaultValue: number, description: string) => option(defaultValue, description, parseSizeBytes),

  string: (defaultValue: string, description: string, pattern?: RegExp, patternText?: string) =>
    option(defaultValue, description, (v) => {
      if (typeof v !== 'string') return bad(`expected a string, got ${show(v)}`)
      if (pattern !== undefined && !pattern.test(v)) return bad(`${patternText ?? `must match ${pattern.source}`}, got ${show(v)}`)
      return ok(v)
    }),

  nullableString: (description: string, options: { minLength?: number; isSecret?: boolean } = {}) =>
    option<string | null>(null, description, (v) => {
      if (v === null) return ok(null)
      if (typeof v !== 'string') return bad(`expected a string or null, got ${options.isSecret === true ? 'a non-string' : show(v)}`)
      if (options.minLength !== undefined && v.length < options.minLength) {
        return bad(`must be at least ${options.minLength} characters long${options.isSecret === true ? '' : `, got ${show(v)}`}`)
      }
      return ok(v)
    }, options.isSecret === true),

  oneOf: <T extends string>(defaultValue: T, choices: readonly T[], description: string) =>
    option(defaultValue, description, (v) =>
      (choices as readonly unknown[]).includes(v) ? ok(v as T) : bad(`expected one of ${choices.join(', ')}, got ${show(v)}`)),

  listOf: <T extends string>(defaultValue: readonly T[], choices: readonly T[], description: string) =>
    option(defaultValue, description, (v) => {
      if (!Array.isArray(v)) return bad(`expected an array of ${choices.join(', ')}, got ${show(v)}`)
      const wrong = v.findIndex((item) => !(choices as readonly unknown[]).includes(item))
      if (wrong >= 0) return bad(`[${wrong}] must be one of ${choices.join(', ')}, got ${show(v[wrong])}`)
      return ok(Object.freeze([...v]) as readonly T[])
    }),

  stringList: (defaultValue: readonly string[], description: string) =>
    option(defaultValue, description, (v) => {
      if (!Array.isArray(v)) return bad(`expected an array of strings, got ${show(v)}`)
      const wrong = v.findIndex((item) => typeof item !== 'string' || item === '')
      if (wrong >= 0) return bad(`[${wrong}] must be a non-empty string, got ${show(v[wrong])}`)
      return ok(Object.freeze([...v]) as readonly string[])
    }),

  hostPort: (defaultValue: string, description: string) =>
    option<HostPort>(mustParse(parseHostPort(defaultValue)), description, parseHostPort),

  hostPortList: (defaultValue: readonly string[], description: string) =>
    option<readonly HostPort[]>(defaultValue.map((text) => mustParse(parseHostPort(text))), description, (v) => {
      if (!Array.isArray(v)) return bad(`expected an array of "host:port" or port numbers, got ${show(v)}`)
      const addresses: HostPort[] = []
      for (const [i, item] of v.entries()) {
        const parsed = parseHostPort(item)
        if (!parsed.ok) return bad(`[${i}]: ${parsed.problem}`)
        addresses.push(parsed.value)
      }
      return ok(Object.freeze(addresses))
    }),

  /** Generic checked value, for the few options with a shape of their own. */
  custom: <T>(defaultValue: T, description: string, check: (value: unknown) => Parsed<T>) => option(defaultValue, description, check),
}

function mustParse<T>(parsed: Parsed<T>): T {
  if (!parsed.ok) throw new Error(`invalid built-in default: ${parsed.problem}`)
  return parsed.value
}

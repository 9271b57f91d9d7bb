/** Turns slardar.json5 text (or an already parsed object) into a validated, frozen Config.
 *  Owns defaults filling, the unknown-key check with "did you mean" hints, the environment overrides
 *  (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, SLARDAR_ADMIN_TOKEN; applied here and nowhere else) and the
 *  secret-masked view printed by check-config. Every problem is collected, never just the first. */

import { readFile } from 'node:fs/promises'
import JSON5 from 'json5'
import { ConfigFileError, ConfigInvalidError } from './errors.js'
import { isOption, type OptionSpec, type SchemaTree } from './options.js'
import { type Config, schema } from './schema.js'
import { editDistance, parseHostPort, show } from './values.js'

export const MASKED_SECRET = '******'

/** The subset of process.env the loader reads; injectable so tests never touch the real environment. */
export interface ConfigEnv {
  readonly CONSUL_HTTP_ADDR?: string | undefined
  readonly CONSUL_HTTP_TOKEN?: string | undefined
  readonly SLARDAR_ADMIN_TOKEN?: string | undefined
}

/** Command-line flags that override the file (`--log-level`, `--workers`). */
export interface ConfigOverrides {
  readonly logLevel?: string | undefined
  readonly workers?: string | undefined
}

export async function loadConfigFile(path: string, env: ConfigEnv = process.env, overrides: ConfigOverrides = {}): Promise<Config> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new ConfigFileError(path, `cannot read the config file (${code})`, { cause: err })
  }
  return parseConfigText(text, path, env, overrides)
}

export function parseConfigText(text: string, source: string, env: ConfigEnv = {}, overrides: ConfigOverrides = {}): Config {
  let raw: unknown
  try {
    raw = JSON5.parse(text)
  } catch (err) {
    // json5's messages already carry "at line:column"; keep them verbatim.
    throw new ConfigFileError(source, `not valid JSON5: ${(err as Error).message}`, { cause: err })
  }
  return buildConfig(raw, source, env, overrides)
}

/** Validates a parsed document. `source` names the file in error headers. */
export function buildConfig(raw: unknown, source: string, env: ConfigEnv = {}, overrides: ConfigOverrides = {}): Config {
  const problems: string[] = []
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigInvalidError(source, [`the top level must be an object, got ${show(raw)}`])
  }
  const document = structuredClone(raw) as Record<string, unknown>
  applyOverrides(document, overrides)
  const config = walk(schema, document, '', problems) as Record<string, unknown>
  applyEnv(config, env, problems)
  if (problems.length > 0) throw new ConfigInvalidError(source, problems)
  return deepFreeze(config) as unknown as Config
}

function walk(tree: SchemaTree, value: Record<string, unknown>, pathPrefix: string, problems: string[]): Record<string, unknown> {
  const result: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    if (!(key in tree)) problems.push(unknownKeyProblem(tree, key, pathPrefix))
  }
  for (const [key, node] of Object.entries(tree)) {
    const path = pathPrefix + key
    const given = value[key]
    if (isOption(node)) {
      result[key] = given === undefined ? node.defaultValue : checkOption(node, given, path, problems)
    } else if (given === undefined) {
      result[key] = walk(node, {}, `${path}.`, problems)
    } else if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      problems.push(`${path}: expected a section (object), got ${show(given)}`)
      result[key] = walk(node, {}, `${path}.`, [])
    } else {
      result[key] = walk(node, given as Record<string, unknown>, `${path}.`, problems)
    }
  }
  return result
}

function checkOption(node: OptionSpec<unknown>, given: unknown, path: string, problems: string[]): unknown {
  const checked = node.check(given)
  if (checked.ok) return checked.value
  problems.push(checked.problem.startsWith('[') || checked.problem.startsWith('.') ? `${path}${checked.problem}` : `${path}: ${checked.problem}`)
  return node.defaultValue
}

function unknownKeyProblem(tree: SchemaTree, key: string, pathPrefix: string): string {
  let best: string | null = null
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of Object.keys(tree)) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  const isClose = best !== null && bestDistance <= Math.max(2, Math.floor(key.length / 3))
  return `${pathPrefix}${key}: unknown option${isClose ? ` (did you mean ${pathPrefix}${best}?)` : ''}`
}

function applyOverrides(document: Record<string, unknown>, overrides: ConfigOverrides): void {
  if (overrides.logLevel !== undefined) {
    const log = typeof document['log'] === 'object' && document['log'] !== null ? (document['log'] as Record<string, unknown>) : {}
    document['log'] = { ...log, level: overrides.logLevel }
  }
  if (overrides.workers !== undefined) {
    document['workers'] = /^\d+$/.test(overrides.workers) ? Number(overrides.workers) : overrides.workers
  }
}

function applyEnv(config: Record<string, unknown>, env: ConfigEnv, problems: string[]): void {
  const consul = config['consul'] as Record<string, unknown>
  const admin = config['admin'] as Record<string, unknown>
  if (env.CONSUL_HTTP_ADDR !== undefined && env.CONSUL_HTTP_ADDR !== '') {
    const match = /^(?:(https?):\/\/)?(.+?)\/?$/.exec(env.CONSUL_HTTP_ADDR.trim())
    const address = match === null ? null : parseHostPort(match[2])
    if (match === null || address === null || !address.ok) {
      problems.push(`CONSUL_HTTP_ADDR: expected "host:port" or "http(s)://host:port", got ${show(env.CONSUL_HTTP_ADDR)}`)
    } else {
      consul['address'] = address.value
      consul['servers'] = Object.freeze([])
      if (match[1] !== undefined) consul['scheme'] = match[1]
    }
  }
  if (env.CONSUL_HTTP_TOKEN !== undefined && env.CONSUL_HTTP_TOKEN !== '') consul['token'] = env.CONSUL_HTTP_TOKEN
  if (env.SLARDAR_ADMIN_TOKEN !== undefined && env.SLARDAR_ADMIN_TOKEN !== '') {
    if (env.SLARDAR_ADMIN_TOKEN.length < 16) problems.push('SLARDAR_ADMIN_TOKEN: must be at least 16 characters long')
    else admin['token'] = env.SLARDAR_ADMIN_TOKEN
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}

/** The effective config as check-config prints it: defaults filled, secrets replaced by "******". */
export function describeConfig(config: Config): unknown {
  return mask(schema, config as unknown as Record<string, unknown>)
}

function mask(tree: SchemaTree, value: Record<string, unknown>): Record<string, unknown> {
  const shown: Record<string, unknown> = {}
  for (const [key, node] of Object.entries(tree)) {
    const current = value[key]
    if (isOption(node)) shown[key] = node.isSecret && current !== null ? MASKED_SECRET : current
    else shown[key] = mask(node, current as Record<string, unknown>)
  }
  return shown
}

/** Every option path of the schema, e.g. `proxy.tries`; used by the test that keeps examples/ complete. */
export function listOptionPaths(tree: SchemaTree = schema, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([key, node]) => (isOption(node) ? [prefix + key] : listOptionPaths(node, `${prefix}${key}.`)))
}

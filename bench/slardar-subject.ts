/** The subject of the proxy cases: whatever `node dist/src/cli.js start -c <config>` serves, configured from
 *  bench/slardar.bench.json5. Owns the per-case copy of that file (pure `buildSubjectConfig`) and starting it;
 *  leaves readiness and stopping to the runner. */

import { readFile, writeFile } from 'node:fs/promises'
import JSON5 from 'json5'
import type { Child, ChildRegistry } from './processes.js'

export interface SubjectPlacement {
  readonly proxyPort: number
  readonly adminPort: number
  readonly workers: number
  /** The servers of the bench upstream, in order (the `retry` case includes a refusing port). */
  readonly serverPorts: readonly number[]
  /** Heartbeats mark a refusing server `err` within one probe, after which no request reaches it; the `retry`
   *  case turns them off for its upstream so every third pick still exercises the retry path, as in nginx. */
  readonly isHeartbeatEnabled: boolean
  readonly accessLogPath: string
  readonly snapshotPath: string
  /** Embedded Consul to read scripts from, or null to run from the file alone. */
  readonly consulAddress: string | null
}

type JsonObject = Record<string, unknown>

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function section(config: JsonObject, name: string): JsonObject {
  const value = config[name]
  return isObject(value) ? { ...value } : {}
}

/** The upstream the bench routes to: the one `proxy.default_upstream` names, since wrk's Host names none. */
export function benchUpstreamName(template: JsonObject): string {
  const name = section(template, 'proxy')['default_upstream']
  if (typeof name !== 'string' || name === '') {
    throw new Error('bench/slardar.bench.json5: proxy.default_upstream must name the bench upstream (wrk sends Host: 127.0.0.1:<port>)')
  }
  return name
}

/** The template with this case's ports, workers, servers and paths; every other option stays as written. */
export function buildSubjectConfig(template: JsonObject, placement: SubjectPlacement): JsonObject {
  const upstreamName = benchUpstreamName(template)
  const upstreams = section(template, 'upstreams')
  const upstream = isObject(upstreams[upstreamName]) ? { ...(upstreams[upstreamName] as JsonObject) } : {}
  delete upstream['cluster']
  upstream['servers'] = placement.serverPorts.map((port) => ({ host: '127.0.0.1', port }))
  upstream['enable'] = placement.isHeartbeatEnabled
  upstreams[upstreamName] = upstream

  const consul = section(template, 'consul')
  consul['enable'] = placement.consulAddress !== null
  if (placement.consulAddress !== null) consul['address'] = placement.consulAddress

  return {
    ...template,
    consul,
    proxy: { ...section(template, 'proxy'), listen: [`127.0.0.1:${placement.proxyPort}`] },
    admin: { ...section(template, 'admin'), listen: `127.0.0.1:${placement.adminPort}` },
    workers: placement.workers,
    snapshot: { ...section(template, 'snapshot'), path: placement.snapshotPath },
    log: { ...section(template, 'log'), access: placement.accessLogPath },
    upstreams,
  }
}

export async function loadSubjectTemplate(path: string): Promise<JsonObject> {
  const parsed: unknown = JSON5.parse(await readFile(path, 'utf8'))
  if (!isObject(parsed)) throw new Error(`${path}: expected an object at the top level`)
  return parsed
}

/** Writes the case's copy of the config (JSON is valid JSON5) and starts `slardar start -c` on it. */
export async function startSlardar(
  registry: ChildRegistry,
  options: { readonly repoRoot: string; readonly cliPath: string; readonly configPath: string; readonly config: JsonObject },
): Promise<Child> {
  await writeFile(options.configPath, `${JSON.stringify(options.config, null, 2)}\n`)
  return registry.spawn('slardar', process.execPath, [options.cliPath, 'start', '-c', options.configPath], { cwd: options.repoRoot })
}

/** The KV source for cases that need more than the config file (per-host scripts live only in KV,
 *  scripts.md §2): the project's own `slardar consul-dev`, seeded over Consul's HTTP API.
 *  Owns starting it and writing the case's keys; the subject then reads them through its normal watch. */

import { request as httpRequest } from 'node:http'
import type { Child, ChildRegistry } from './processes.js'
import { waitUntilServing } from './processes.js'

const START_WITHIN_MS = 10_000
const PUT_TIMEOUT_MS = 5_000

export interface EmbeddedConsul {
  readonly child: Child
  readonly address: string
}

export type ConsulStart = { readonly ok: true; readonly consul: EmbeddedConsul } | { readonly ok: false; readonly reason: string }

/** Starts `consul-dev` on `port` and writes `keys` (relative to `keyPrefix`) before anything reads them. */
export async function startSeededConsul(
  registry: ChildRegistry,
  options: { readonly repoRoot: string; readonly cliPath: string; readonly port: number; readonly keyPrefix: string; readonly keys: Readonly<Record<string, string>> },
): Promise<ConsulStart> {
  const address = `127.0.0.1:${options.port}`
  const child = registry.spawn('consul-dev', process.execPath, [options.cliPath, 'consul-dev', '--listen', address], { cwd: options.repoRoot })
  const ready = await waitUntilServing(child, {
    url: `http://${address}/v1/status/leader`,
    withinMs: START_WITHIN_MS,
    status: 200,
    bodyBytes: null,
  })
  if (!ready.ok) return { ok: false, reason: `embedded consul: ${ready.reason}` }
  for (const [key, value] of Object.entries(options.keys)) {
    const status = await putKey(address, `${options.keyPrefix}${key}`, value)
    if (status !== 200) return { ok: false, reason: `embedded consul: PUT ${options.keyPrefix}${key} answered ${status}` }
  }
  return { ok: true, consul: { child, address } }
}

function putKey(address: string, key: string, value: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`http://${address}/v1/kv/${key}`, { method: 'PUT', agent: false, timeout: PUT_TIMEOUT_MS }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy(new Error(`PUT ${key}: no answer within ${PUT_TIMEOUT_MS} ms`)))
    req.on('error', reject)
    req.end(value)
  })
}

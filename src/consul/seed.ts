/** Seeds a dev Consul from a folder (`slardar dev --seed DIR`, consul.md §14): a file's path below DIR is its
 *  key below the prefix, minus one trailing `.json`, `.json5`, `.lua` or `.js`. Writes go through the HTTP
 *  API with `cas=0`, and only when the whole KV is empty, so a persisted dev store is never overwritten. */

import { readdir, readFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { CallCanceller, type ConsulEndpoint, createKeyIfAbsent, readListing } from './client.js'

const SEED_EXTENSIONS = /\.(json5?|lua|js)$/

export interface SeedResult {
  readonly seeded: boolean
  readonly keys: readonly string[]
}

export async function seedIfEmpty(endpoint: ConsulEndpoint, prefix: string, dir: string, timeoutMs: number): Promise<SeedResult> {
  const existing = await readListing(endpoint, { prefix: '', index: 0n, waitText: null, timeoutMs, canceller: new CallCanceller() })
  if (existing.statusCode !== 404) return { seeded: false, keys: [] }
  const files = await listFiles(dir)
  const keys: string[] = []
  for (const file of files) {
    const key = prefix + relative(dir, file).split(sep).join('/').replace(SEED_EXTENSIONS, '')
    await createKeyIfAbsent(endpoint, key, await readFile(file), timeoutMs)
    keys.push(key)
  }
  return { seeded: true, keys }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const nested = await Promise.all(
    entries
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map(async (entry) => {
        const path = join(dir, entry.name)
        if (entry.isDirectory()) return listFiles(path)
        return entry.isFile() ? [path] : []
      }),
  )
  return nested.flat()
}

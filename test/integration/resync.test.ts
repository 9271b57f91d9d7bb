/** consul.md §4, last bullet: the full resync (node-cron, `jobs.full_resync`) finds a difference the watch cannot see.
 *
 *  How the watch is made to miss a change honestly: the embedded Consul persists its KV (`--data`); between a stop and
 *  a restart on the same port, one key is edited in that file to a new value under a ModifyIndex that is no higher than
 *  the prefix's index, as a restore from a backup can do. The prefix's X-Consul-Index does not move, so the blocking
 *  query has nothing to report, and the index probe sees no regression; only a full read shows the new value. */

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import Consul from 'consul'
import { startDevServer } from '../../src/consul/devserver/index.js'
import { quietWindow, waitFor } from '../support/wait-for.js'
import { createPrimary, deferCleanup, peersOf, PREFIX, tempDir, testConfig, upstreamValue } from './primary-harness.js'

interface PersistedEntry {
  key: string
  value: string | null
  modify_index: string
}

/** Rewrites `key` in the dev server's data file: new value, ModifyIndex moved to the next entry's (still <= the max). */
async function restoreEditedBackup(dataDir: string, key: string, value: string): Promise<void> {
  const file = join(dataDir, 'consul-kv.json')
  const document = JSON.parse(await readFile(file, 'utf8')) as { sha256: string; body: { entries: PersistedEntry[] } }
  const entries = document.body.entries
  const position = entries.findIndex((entry) => entry.key === key)
  const edited = entries[position] as PersistedEntry
  const next = entries[position + 1] as PersistedEntry
  edited.value = Buffer.from(value).toString('base64')
  edited.modify_index = next.modify_index
  document.sha256 = createHash('sha256').update(JSON.stringify(document.body)).digest('hex')
  await writeFile(file, JSON.stringify(document))
}

test('a full resync corrects a change the watch missed, logs it and counts it once', async (t) => {
  const dataDir = await tempDir(t)
  const first = await startDevServer({ listen: '127.0.0.1:0', data: dataDir })
  const port = first.port
  const client = new Consul({ host: '127.0.0.1', port })
  for (const name of ['a', 'b', 'c']) await client.kv.set(`${PREFIX}http_upstreams/${name}`, upstreamValue(9001))
  client.destroy()

  const config = testConfig(`127.0.0.1:${port}`, join(await tempDir(t), 'snapshot.json'), { jobs: { full_resync: '* * * * * *' } })
  const primary = createPrimary(t, config)
  await primary.start()
  const indexBefore = primary.state.index
  await first.close()
  await restoreEditedBackup(dataDir, `${PREFIX}http_upstreams/a`, upstreamValue(9007))
  const second = await startDevServer({ listen: `127.0.0.1:${port}`, data: dataDir })
  deferCleanup(t, () => second.close())

  await waitFor(() => primary.syncCounters().resyncCorrections > 0, { withinMs: 10_000, what: 'a resync correction' })
  assert.deepEqual(peersOf(primary, 'a').map((peer) => peer.id), ['127.0.0.1:9007'])
  assert.equal(primary.state.index, indexBefore, 'the prefix index never moved: the watch could not have seen it')
  assert.equal(primary.consulWatch?.status().indexResets, 0)
  await quietWindow(1500)
  assert.equal(primary.syncCounters().resyncCorrections, 1, 'later resyncs find nothing more')
})

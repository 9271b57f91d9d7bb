/** consul.md §4 "Index probe" wired to the cls:consul tick (§9): after Consul comes back with a lower index (here a
 *  fresh embedded server on the same port, as after a restore), the watch's cursor is ahead of the server and its
 *  blocking query would wait blind for the whole `consul.wait`. The probe on the health tick notices and re-reads. */

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import Consul from 'consul'
import { startDevServer } from '../../src/consul/devserver/index.js'
import { waitFor } from '../support/wait-for.js'
import { createPrimary, deferCleanup, PREFIX, tempDir, testConfig, upstreamValue } from './primary-harness.js'

async function putAll(port: number, names: readonly string[]): Promise<void> {
  const client = new Consul({ host: '127.0.0.1', port })
  for (const name of names) await client.kv.set(`${PREFIX}http_upstreams/${name}`, upstreamValue(9001))
  client.destroy()
}

test('a Consul whose index went backwards is re-read on the next health tick, not after the full wait', async (t) => {
  const first = await startDevServer({ listen: '127.0.0.1:0' })
  const port = first.port
  await putAll(port, ['a', 'b', 'c', 'd', 'e', 'f'])
  const config = testConfig(`127.0.0.1:${port}`, join(await tempDir(t), 'snapshot.json'), {
    consul: { wait: '60s' },
    global: { checkup_timer_interval: 0.5 },
    guard: { enable: false },
  })
  const primary = createPrimary(t, config)
  await primary.start()
  const cursorBefore = primary.state.index
  // The first check round (started with the primary) must be over, so only later ticks can notice the restore.
  await waitFor(() => (primary.clsConsul() as { status: string }[][])[0]?.[0]?.status === 'ok', { withinMs: 3000, what: 'the first check' })
  await first.close()

  const second = await startDevServer({ listen: `127.0.0.1:${port}` })
  deferCleanup(t, () => second.close())
  await putAll(port, ['restored'])
  const restartedMs = performance.now()
  await waitFor(() => primary.checkups.table.get('restored'), { withinMs: 10_000, what: 'the restored key' })
  assert.ok(performance.now() - restartedMs < 10_000)
  assert.ok(primary.state.index < cursorBefore, 'the cursor followed the server down')
  assert.ok((primary.consulWatch?.status().indexResets ?? 0) >= 1)
  assert.deepEqual([...primary.checkups.table.upstreams()].map((upstream) => upstream.name), ['restored'])
})

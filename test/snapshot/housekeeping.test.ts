import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { isProcessAlive, removeStaleTempFiles } from '../../src/snapshot/index.js'

test('only temp files of this snapshot whose writer is gone are removed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'slardar-housekeeping-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'snapshot.json')
  const names = [
    'snapshot.json', 'snapshot.json.tmp-111', 'snapshot.json.tmp-222', `snapshot.json.tmp-${process.pid}`,
    'snapshot.json.tmp-abc', 'snapshot.json.tmp-0', 'other.json.tmp-111',
  ]
  for (const name of names) await writeFile(join(dir, name), 'x')
  const removed = await removeStaleTempFiles(path, (pid) => pid === 222)
  assert.deepEqual(removed, [join(dir, 'snapshot.json.tmp-111')])
  assert.deepEqual((await readdir(dir)).sort(), names.filter((name) => name !== 'snapshot.json.tmp-111').sort())
})

test('a snapshot directory that does not exist yet has nothing to clean', async () => {
  assert.deepEqual(await removeStaleTempFiles(join(tmpdir(), 'slardar-no-such-dir-0f3a', 'snapshot.json')), [])
})

test('isProcessAlive tells this process from a pid no process can have', () => {
  assert.equal(isProcessAlive(process.pid), true)
  assert.equal(isProcessAlive(2 ** 22 + 1), false)
})

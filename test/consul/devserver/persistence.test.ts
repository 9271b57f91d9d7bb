/** consul.md §24: the `--data` file. Unit tests of persistence.ts, and restarts of a real server on the same dir. */

import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import { startDevServer } from '../../../src/consul/devserver/index.js'
import { DATA_FILE_NAME, loadDataFile, writeDataFile, type PersistedState } from '../../../src/consul/devserver/persistence.js'
import { waitFor } from '../../support/wait-for.js'
import { call, entries } from './conformance.js'

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slardar-consul-dev-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const STATE: PersistedState = {
  index: 42n,
  kv: {
    kvsIndex: 40n,
    entries: [
      { key: 'a', flags: 18_446_744_073_709_551_615n, value: Buffer.from('x'), lockIndex: 3n, session: null, createIndex: 11n, modifyIndex: 40n },
      { key: 'empty', flags: 0n, value: null, lockIndex: 0n, session: null, createIndex: 12n, modifyIndex: 12n },
    ],
    tombstones: new Map([['gone', 39n]]),
  },
}

describe('§24 persistence', { concurrency: true }, () => {
  test('a written file loads back exactly, is 0600 in a 0700 directory, and leaves no temp file', async (t) => {
    const dir = join(await tempDir(t), 'data')
    await writeDataFile(dir, STATE)
    assert.deepEqual(await loadDataFile(dir), STATE)
    assert.equal((await stat(join(dir, DATA_FILE_NAME))).mode & 0o777, 0o600)
    assert.equal((await stat(dir)).mode & 0o777, 0o700)
    assert.deepEqual(await readdir(dir), [DATA_FILE_NAME])
  })

  test('no file means a fresh start', async (t) => {
    assert.equal(await loadDataFile(await tempDir(t)), null)
  })

  test('a checksum mismatch stops the server with a message naming the file and what to do', async (t) => {
    const dir = await tempDir(t)
    await writeDataFile(dir, STATE)
    const file = join(dir, DATA_FILE_NAME)
    await writeFile(file, (await readFile(file, 'utf8')).replace('"kvs_index":"40"', '"kvs_index":"41"'))
    await assert.rejects(startDevServer({ data: dir }), {
      code: 'CONSUL_DEV_DATA_CORRUPT',
      message: `consul-dev: ${file} is corrupt (checksum mismatch); move it away to start empty`,
    })
  })

  test('a file that is not JSON is reported as corrupt too', async (t) => {
    const dir = await tempDir(t)
    await writeFile(join(dir, DATA_FILE_NAME), '{truncated')
    await assert.rejects(loadDataFile(dir), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CONSUL_DEV_DATA_CORRUPT')
      assert.match(err.message, /is corrupt \(not JSON: .*\); move it away to start empty$/)
      return true
    })
  })

  test('a restart keeps keys and continues the index; locks come back released with LockIndex kept', async (t) => {
    const dir = await tempDir(t)
    const first = await startDevServer({ data: dir })
    await call(first.url, 'PUT', '/v1/kv/kept', { body: 'v' })
    const session = (await call(first.url, 'PUT', '/v1/session/create', { body: '{}' })).json() as { ID: string }
    await call(first.url, 'PUT', `/v1/kv/locked?acquire=${session.ID}`, { body: 'l' })
    await call(first.url, 'PUT', '/v1/kv/deleted', { body: 'd' })
    await call(first.url, 'DELETE', '/v1/kv/deleted')
    await waitFor(async () => (await readFile(join(dir, DATA_FILE_NAME), 'utf8').catch(() => '')).includes('"deleted"'), {
      withinMs: 1000,
      what: 'the data file to be written soon after the last change',
    })
    const indexBefore = first.stats().index
    await first.close()

    const second = await startDevServer({ data: dir })
    t.after(() => second.close())
    assert.equal(entries(await call(second.url, 'GET', '/v1/kv/kept'))[0]?.Value, Buffer.from('v').toString('base64'))
    const locked = entries(await call(second.url, 'GET', '/v1/kv/locked'))[0]
    assert.equal(locked?.Session, undefined)
    assert.equal(locked?.LockIndex, 1)
    assert.equal(second.stats().index, indexBefore)
    await call(second.url, 'PUT', '/v1/kv/next', { body: 'n' })
    assert.ok(BigInt(entries(await call(second.url, 'GET', '/v1/kv/next'))[0]?.ModifyIndex ?? 0) > indexBefore)
    const deleted = await call(second.url, 'GET', '/v1/kv/deleted/?recurse')
    assert.equal(deleted.status, 404)
  })
})

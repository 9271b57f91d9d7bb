/** consul.md §7: while the live state is not authoritative, dynamic-config reads answer at once with the last known
 *  value and refresh the key from Consul in the background.
 *
 *  How the state is made non-authoritative honestly: the primary's token may read only `config/slardar/my*`, so every
 *  listing of the prefix is ACL-filtered (X-Consul-Results-Filtered-By-ACLs), a failed read by consul.md §5. The
 *  primary serves the snapshot file (source `snapshot`), while single-key reads of `myargs` succeed. */

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import Consul from 'consul'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { createPrimary, deferCleanup, PREFIX, tempDir, testConfig, upstreamValue, writeSnapshot } from './primary-harness.js'

const READER = { secret: 'reader-secret-0123', accessor: '6a1a4c0e-1c39-4c7e-9a3e-0d3f3b0c1a01', read: [`${PREFIX}my`], write: [] }

test('with the snapshot not authoritative, a dynamic key reads its last value at once and follows Consul through refreshes', async (t) => {
  const consul = await startDevConsul(t, { acl_token: 'root', acl_tokens: [READER] })
  const root = new Consul({ host: '127.0.0.1', port: consul.port, defaults: { token: 'root' } })
  deferCleanup(t, () => root.destroy())
  await root.kv.set(`${PREFIX}myargs`, '{"limit":2}')
  await root.kv.set(`${PREFIX}http_upstreams/a`, upstreamValue(9001))
  const path = join(await tempDir(t), 'snapshot.json')
  await writeSnapshot(path, { 'http_upstreams/a': upstreamValue(9001), myargs: '{"limit":1}' })
  const primary = createPrimary(t, testConfig(consul.addr, path, {
    consul: { token: READER.secret, config_positive_ttl: 1, config_negative_ttl: 1 },
  }))
  assert.equal(await primary.start(), 'snapshot')
  assert.match(String((primary.consulStatus()['last_error'] as { message: string } | null)?.message), /X-Consul-Results-Filtered-By-ACLs/)

  assert.deepEqual(primary.readDynamicConfig('myargs'), { limit: 1 }, 'the first read answers from the file at once')
  await waitFor(() => (primary.readDynamicConfig('myargs') as { limit: number }).limit === 2, { withinMs: 3000, what: 'the refreshed value' })

  await root.kv.set(`${PREFIX}myargs`, '{"limit":3}')
  assert.deepEqual(primary.readDynamicConfig('myargs'), { limit: 2 }, 'within the positive TTL the cached value serves')
  await waitFor(() => (primary.readDynamicConfig('myargs') as { limit: number }).limit === 3, { withinMs: 4000, what: 'the value after the TTL' })

  assert.equal(primary.readDynamicConfig('mynew'), undefined)
  await root.kv.set(`${PREFIX}mynew`, '[1, 2]')
  await waitFor(() => Array.isArray(primary.readDynamicConfig('mynew')), { withinMs: 4000, what: 'the key created after a 404' })
  assert.equal(primary.source, 'snapshot')
})

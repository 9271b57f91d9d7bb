/** consul.md §7 with worker processes: scripts in the workers read their own copy of the dynamic config, so while the
 *  primary serves a non-authoritative state the workers' reads must still drive the primary's read-through refreshes,
 *  and the refreshed values must reach every worker.
 *
 *  Non-authoritative, honestly: the primary's token may read only `config/slardar/my*`, so every listing of the prefix
 *  is ACL-filtered (a failed read, consul.md §5) and the primary serves the snapshot file, while single-key reads of
 *  `myargs` succeed. */

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import Consul from 'consul'
import { startHttpBackend } from '../support/backends.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'
import { writeSnapshot } from '../integration/primary-harness.js'
import { getJson, makeTempDir, PREFIX, requestUntil, startCluster, upstreamJson, WORKER_STAMP_LUA, workerOf } from './harness.js'

const HOST = 'overlay.test'
const READER = { secret: 'reader-secret-0123', accessor: '6a1a4c0e-1c39-4c7e-9a3e-0d3f3b0c1a01', read: [`${PREFIX}my`], write: [] }

test('with workers: 2 and the snapshot not authoritative, scripts in both workers follow a dynamic key refreshed from Consul', async (t) => {
  const consul = await startDevConsul(t, { acl_token: 'root', acl_tokens: [READER] })
  const root = new Consul({ host: '127.0.0.1', port: consul.port, defaults: { token: 'root' } })
  t.after(() => root.destroy())
  const backend = await startHttpBackend(t, { body: 'ok' })
  const script = `${WORKER_STAMP_LUA}ngx.header["X-Greeting"] = slardar.myargs and slardar.myargs.greeting or "none"\n`
  const dir = await makeTempDir()
  const snapshotPath = join(dir, 'snapshot.json')
  await writeSnapshot(snapshotPath, {
    [`http_upstreams/${HOST}`]: upstreamJson([backend.port]),
    [`lua/script.${HOST}`]: script,
    myargs: '{"greeting":"from-file"}',
  })
  await root.kv.set(`${PREFIX}myargs`, '{"greeting":"from-consul-1"}')
  // A key the reader may not see: every listing of the prefix is filtered.
  await root.kv.set(`${PREFIX}http_upstreams/${HOST}`, upstreamJson([backend.port]))
  const cluster = await startCluster(t, consul, {
    workers: 2,
    dir,
    config: {
      consul: { token: READER.secret, config_positive_ttl: 1, config_negative_ttl: 1 },
      snapshot: { enable: true, path: snapshotPath },
    },
  })
  const status = await getJson(cluster.adminPort, '/status')
  assert.equal((status['consul'] as { source: string }).source, 'snapshot', `the primary serves the file: ${cluster.output.join('\n')}`)

  const greetingsSeen = async (): Promise<Map<string, unknown>> => {
    const { replies } = await requestUntil(cluster.proxyPort, HOST, (reply) => reply.status === 200, (seen) => seen.size === 2, 20)
    return new Map(replies.map((reply) => [workerOf(reply).split('/')[0]!, reply.headers['x-greeting']]))
  }
  const bothSay = (greeting: string) => async (): Promise<boolean> => {
    const seen = await greetingsSeen()
    return seen.get('0') === greeting && seen.get('1') === greeting
  }

  await waitFor(bothSay('from-consul-1'), { withinMs: 10_000, what: 'both workers to read the refreshed value' })
  await root.kv.set(`${PREFIX}myargs`, '{"greeting":"from-consul-2"}')
  await waitFor(bothSay('from-consul-2'), { withinMs: 10_000, what: 'both workers to follow the key after its TTL' })
  await root.kv.del(`${PREFIX}myargs`)
  await waitFor(bothSay('none'), { withinMs: 10_000, what: 'both workers to see the key gone' })
  assert.equal(((await getJson(cluster.adminPort, '/status'))['consul'] as { source: string }).source, 'snapshot')
})

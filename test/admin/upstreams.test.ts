import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { type AdminHarness, startAdminHarness, upstreamBody } from '../support/admin-harness.js'
import { startDevConsul } from '../support/dev-consul.js'
import { waitFor } from '../support/wait-for.js'

const THREE_SERVERS = JSON.stringify({
  servers: [
    { host: '127.0.0.1', port: 9091, weight: 11, max_fails: 3, fail_timeout: 1 },
    { host: '127.0.0.1', port: 9092, weight: 22 },
    { host: '127.0.0.1', port: 9093 },
  ],
})

type StatusServer = { server: string; weight: number }

async function statusOf(h: AdminHarness): Promise<Record<string, unknown>> {
  const res = await h.request('GET', '/status')
  assert.equal(res.status, 200)
  return res.json() as Record<string, unknown>
}

/** Waits until this node serves `key` at or above `index` (for values written straight to Consul). */
async function waitUntilServed(h: AdminHarness, key: string): Promise<void> {
  const written = await h.kvGet(key)
  assert.ok(written !== undefined)
  await waitFor(() => (h.primary.state.served.get(key)?.entry.modifyIndex ?? 0n) >= written.modifyIndex, { withinMs: 3000, what: `${key} to be applied` })
}

test("Slardar's walkthrough: POST an upstream, see it in /status at once, DELETE it, DELETE again gives 400", async (t) => {
  const h = await startAdminHarness(t)
  const created = await h.request('POST', '/upstream/test', { body: THREE_SERVERS })
  assert.equal(created.status, 200)
  assert.equal(created.text, '{"status":200}')

  // Read-your-writes: the 200 means this node already serves it, so no polling here.
  const levels = (await statusOf(h))['cls:test'] as StatusServer[][]
  assert.deepEqual(levels[0]?.map((server) => [server.server, server.weight]), [
    ['test:127.0.0.1:9091', 11],
    ['test:127.0.0.1:9092', 22],
    ['test:127.0.0.1:9093', 1],
  ])
  const stored = await h.kvGet('http_upstreams/test')
  assert.equal(stored?.value, THREE_SERVERS, 'written through to Consul KV as compact JSON')

  const deleted = await h.request('DELETE', '/upstream/test')
  assert.equal(deleted.status, 200)
  assert.equal(deleted.text, '{"status":200}')
  assert.equal((await statusOf(h))['cls:test'], undefined)
  assert.equal(await h.kvGet('http_upstreams/test'), undefined)

  const again = await h.request('DELETE', '/upstream/test')
  assert.equal(again.status, 400)
  assert.equal(again.text, '{"status":400,"msg":"upstream test not found"}')
})

test('a cluster body defines two levels and GET /upstreams shows every definition in cluster form, sorted', async (t) => {
  const h = await startAdminHarness(t)
  const twoLevels = { cluster: [{ servers: [{ host: '10.0.0.1', port: 80 }] }, { servers: [{ host: '10.0.0.2', port: 80 }] }] }
  assert.equal((await h.request('POST', '/upstream/zeta', { body: JSON.stringify(twoLevels) })).status, 200)
  assert.equal((await h.request('PUT', '/upstream/alpha', { body: '{"servers":[{"host":"127.0.0.1","port":9091,"weight":11,"max_fails":3,"fail_timeout":1}]}' })).status, 200)
  const levels = (await statusOf(h))['cls:zeta'] as StatusServer[][]
  assert.deepEqual(levels.map((level) => level.map((server) => server.server)), [['zeta:10.0.0.1:80'], ['zeta:10.0.0.2:80']])
  const list = await h.request('GET', '/upstreams')
  assert.equal(list.status, 200)
  assert.equal(
    list.text,
    '{"alpha":{"cluster":[{"servers":[{"host":"127.0.0.1","port":9091,"weight":11,"max_fails":3,"fail_timeout":1}]}]},' +
      `"zeta":${JSON.stringify(twoLevels)}}`,
  )
})

test('GET /upstreams is {} with no upstreams', async (t) => {
  const h = await startAdminHarness(t)
  const res = await h.request('GET', '/upstreams')
  assert.equal(res.text, '{}')
})

test('GET /upstream/<name> gives the definition with its ModifyIndex as ETag; unknown names are 404', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  const res = await h.request('GET', '/upstream/api')
  assert.equal(res.status, 200)
  assert.deepEqual(res.json(), { cluster: [{ servers: [{ host: '127.0.0.1', port: 9001 }] }] })
  assert.equal(res.headers.etag, `"${(await h.kvGet('http_upstreams/api'))?.modifyIndex}"`)
  const missing = await h.request('GET', '/upstream/nope')
  assert.equal(missing.status, 404)
  assert.equal(missing.text, '{"status":404,"msg":"upstream nope not found"}')
})

test('If-Match with a stale index is 409 naming the live index, before any Consul call; the live index writes', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  const etag = (await h.request('GET', '/upstream/api')).headers.etag as string
  const live = (await h.kvGet('http_upstreams/api'))?.modifyIndex
  const stale = await h.request('PUT', '/upstream/api', { body: upstreamBody(9002), headers: { 'If-Match': '"1"' } })
  assert.equal(stale.status, 409)
  assert.equal(stale.text, `{"status":409,"msg":"upstream api was changed by someone else (ModifyIndex now ${live}); re-read and retry"}`)
  assert.equal((await h.kvGet('http_upstreams/api'))?.modifyIndex, live)
  const fresh = await h.request('PUT', '/upstream/api', { body: upstreamBody(9002), headers: { 'If-Match': etag } })
  assert.equal(fresh.status, 200)
  assert.equal((await h.kvGet('http_upstreams/api'))?.value, upstreamBody(9002))
})

test('If-None-Match: * creates only: 409 when the upstream exists, 200 when it does not', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('PUT', '/upstream/api', { body: upstreamBody(9001), headers: { 'If-None-Match': '*' } })).status, 200)
  const again = await h.request('PUT', '/upstream/api', { body: upstreamBody(9002), headers: { 'If-None-Match': '*' } })
  assert.equal(again.status, 409)
  assert.equal((await h.kvGet('http_upstreams/api'))?.value, upstreamBody(9001))
})

test('a concurrent direct KV write makes the CAS fail: 409 with the new ModifyIndex, and the other write stands', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  // Hold this node's view still so the other writer's change lands between our read and our write.
  await h.primary.consulWatch?.stop()
  await h.kvSet('http_upstreams/api', upstreamBody(9009))
  const theirs = (await h.kvGet('http_upstreams/api'))?.modifyIndex
  const res = await h.request('POST', '/upstream/api', { body: upstreamBody(9002) })
  assert.equal(res.status, 409)
  assert.equal(res.text, `{"status":409,"msg":"upstream api was changed by someone else (ModifyIndex now ${theirs}); re-read and retry"}`)
  assert.equal((await h.kvGet('http_upstreams/api'))?.value, upstreamBody(9009))
})

test('a write this node does not apply within admin.apply_wait answers 202 with the index, and arrives later', async (t) => {
  const h = await startAdminHarness(t, { config: { admin: { apply_wait: 0.3 } } })
  const watch = h.primary.consulWatch
  assert.ok(watch !== null)
  await watch.stop()
  const res = await h.request('POST', '/upstream/late', { body: upstreamBody(9001) })
  const written = await h.kvGet('http_upstreams/late')
  assert.equal(res.status, 202)
  assert.equal(res.text, `{"status":202,"msg":"written to consul at index ${written?.modifyIndex}; not yet applied on this node"}`)
  assert.equal((await statusOf(h))['cls:late'], undefined)
  watch.start()
  await waitFor(async () => (await statusOf(h))['cls:late'], { withinMs: 5000, what: 'the write to arrive through the watch' })
})

test('with Consul down a write is 503 with the connection error, and nothing changes locally', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  await h.consul.server.close()
  const res = await h.request('POST', '/upstream/api', { body: upstreamBody(9002) })
  assert.equal(res.status, 503)
  assert.equal(res.text, `{"status":503,"msg":"consul unavailable: connect ECONNREFUSED 127.0.0.1:${h.consul.port}"}`)
  const upstream = await h.request('GET', '/upstream/api')
  assert.deepEqual(upstream.json(), { cluster: [{ servers: [{ host: '127.0.0.1', port: 9001 }] }] })
  const deleted = await h.request('DELETE', '/upstream/api')
  assert.equal(deleted.status, 503)
})

test('a servers body keeps the other live fields and turns a cluster into one level', async (t) => {
  const h = await startAdminHarness(t)
  await h.kvSet('http_upstreams/api', JSON.stringify({ mode: 'hash', enable: false, try: 3, cluster: [{ servers: [{ host: '10.0.0.1', port: 80 }] }, { servers: [{ host: '10.0.0.2', port: 80 }] }] }))
  await waitUntilServed(h, 'http_upstreams/api')
  const res = await h.request('POST', '/upstream/api', { body: '{"servers":[{"host":"10.0.0.3","port":80}],"try":2}' })
  assert.equal(res.status, 200)
  assert.deepEqual(JSON.parse((await h.kvGet('http_upstreams/api'))?.value ?? ''), { mode: 'hash', enable: false, try: 2, servers: [{ host: '10.0.0.3', port: 80 }] })
})

test('a cluster body replaces the whole definition', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: '{"mode":"hash","servers":[{"host":"10.0.0.1","port":80}]}' })
  await h.request('POST', '/upstream/api', { body: '{"cluster":[{"servers":[{"host":"10.0.0.2","port":80}]}]}' })
  assert.deepEqual(JSON.parse((await h.kvGet('http_upstreams/api'))?.value ?? ''), { cluster: [{ servers: [{ host: '10.0.0.2', port: 80 }] }] })
})

test('secrets are shown masked and a write that sends the mask back keeps the stored value', async (t) => {
  const h = await startAdminHarness(t)
  const value = { password: 'p4ss', typ: 'http', http_opts: { path: '/health', headers: { token: 's3cret' } }, servers: [{ host: '10.0.0.1', port: 80 }] }
  await h.kvSet('http_upstreams/api', JSON.stringify(value))
  await waitUntilServed(h, 'http_upstreams/api')
  const shown = await h.request('GET', '/upstream/api')
  assert.deepEqual(shown.json(), {
    password: '******', typ: 'http', http_opts: { path: '/health', headers: { token: '******' } }, cluster: [{ servers: [{ host: '10.0.0.1', port: 80 }] }],
  })
  assert.ok(!(await h.request('GET', '/upstreams')).text.includes('s3cret'))
  const back = JSON.parse(shown.text) as { cluster: { servers: { port: number }[] }[] }
  ;(back.cluster[0] as { servers: { port: number }[] }).servers[0] = { port: 81, host: '10.0.0.1' } as never
  assert.equal((await h.request('PUT', '/upstream/api', { body: JSON.stringify(back) })).status, 200)
  const stored = JSON.parse((await h.kvGet('http_upstreams/api'))?.value ?? '') as typeof value
  assert.equal(stored.password, 'p4ss')
  assert.equal(stored.http_opts.headers.token, 's3cret')
})

test('a masked secret with nothing stored behind it is a 400 naming the field', async (t) => {
  const h = await startAdminHarness(t)
  const res = await h.request('POST', '/upstream/api', { body: '{"password":"******","servers":[]}' })
  assert.equal(res.status, 400)
  assert.equal(res.text, '{"status":400,"msg":"http_upstreams/api: password is \\"******\\" but there is no stored value to keep; send the real value"}')
})

test('a static upstream from the config file is listed but cannot be written or deleted (409)', async (t) => {
  const h = await startAdminHarness(t, { config: { upstreams: { fixed: { servers: [{ host: '10.0.0.9', port: 80 }] } } } })
  assert.deepEqual((await h.request('GET', '/upstreams')).json(), { fixed: { cluster: [{ servers: [{ host: '10.0.0.9', port: 80 }] }] } })
  const message = '{"status":409,"msg":"upstream fixed is defined in the config file and cannot be changed through the API"}'
  const written = await h.request('POST', '/upstream/fixed', { body: upstreamBody(9001) })
  assert.equal(written.status, 409)
  assert.equal(written.text, message)
  assert.equal((await h.request('DELETE', '/upstream/fixed')).text, message)
  assert.equal(await h.kvGet('http_upstreams/fixed'), undefined)
})

test('an empty servers array is valid', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('POST', '/upstream/empty', { body: '{"servers":[]}' })).status, 200)
  assert.deepEqual((await statusOf(h))['cls:empty'], [[]])
})

test('every error row of the upstream table answers its exact message and writes nothing', async (t) => {
  const h = await startAdminHarness(t)
  const cases: [string, string, string | undefined, string][] = [
    ['POST', '/upstream/a%20b', upstreamBody(1), 'invalid name \\"a%20b\\": must match [-_a-zA-Z0-9.]+'],
    ['POST', '/upstream/', upstreamBody(1), 'invalid name \\"\\": must match [-_a-zA-Z0-9.]+'],
    ['POST', '/upstream/consul', upstreamBody(1), 'upstream name consul is reserved'],
    ['POST', '/upstream/t', undefined, 'empty body'],
    ['POST', '/upstream/t', ' \n\t', 'empty body'],
    ['POST', '/upstream/t', '{"servers":[}', "decode body error: invalid character '}' at 1:13"],
    ['POST', '/upstream/t', '1', 'http_upstreams/t: value must be an object'],
    ['POST', '/upstream/t', '"x"', 'http_upstreams/t: value must be an object'],
    ['POST', '/upstream/t', 'null', 'http_upstreams/t: value must be an object'],
    ['POST', '/upstream/t', '[]', 'http_upstreams/t: value must be an object'],
    ['POST', '/upstream/t', '{"mode":"rr"}', 'http_upstreams/t: servers or cluster is required'],
    ['POST', '/upstream/t', '{"servers":[],"cluster":[]}', 'http_upstreams/t: use either servers or cluster, not both'],
    [
      'POST', '/upstream/t', '{"servers":[{"host":"127.0.0.1","port":80},{"host":"127.0.0.1","port":"abc"}],"mode":"least_conn"}',
      'http_upstreams/t: servers[1].port must be an integer 1..65535; mode must be one of rr, hash, url_hash, ip_hash, header_hash',
    ],
    ['POST', '/upstream/t', '{"cluster":[{"servers":[{"host":"x y","port":80}]}]}', 'http_upstreams/t: cluster[0].servers[0].host must be an IP address or a hostname'],
    ['PUT', '/stream_upstream/3131', '{"mode":"url_hash","servers":[]}', 'stream_upstreams/3131: mode must be one of rr, ip_hash for a stream upstream'],
    ['PUT', '/stream_upstream/0123', upstreamBody(1), 'invalid port \\"0123\\"'],
    ['PUT', '/stream_upstream/65536', upstreamBody(1), 'invalid port \\"65536\\"'],
    ['DELETE', '/upstream/nope', undefined, 'upstream nope not found'],
    ['DELETE', '/stream_upstream/3131', undefined, 'stream upstream 3131 not found'],
  ]
  const before = h.consul.server.stats().index
  for (const [method, path, body, msg] of cases) {
    const res = await h.request(method, path, body === undefined ? {} : { body })
    assert.equal(res.text, `{"status":400,"msg":"${msg}"}`, `${method} ${path} ${body ?? ''}`)
    assert.equal(res.status, 400)
  }
  assert.equal(h.consul.server.stats().index, before, 'nothing was written to Consul')
})

test('?dry_run=1 validates and answers the normalised definition without writing', async (t) => {
  const h = await startAdminHarness(t)
  const res = await h.request('POST', '/upstream/api?dry_run=1', { body: '{servers:[{host:"10.0.0.1",port:80,}]}' })
  assert.equal(res.status, 200)
  assert.equal(res.text, '{"status":200,"msg":"dry run: valid","upstream":{"cluster":[{"servers":[{"host":"10.0.0.1","port":80}]}]}}')
  assert.equal(await h.kvGet('http_upstreams/api'), undefined)
})

test('a JSON5 body is accepted and stored as compact JSON', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('POST', '/upstream/api', { body: "{servers: [{host: '10.0.0.1', port: 80,},], // comment\n}" })).status, 200)
  assert.equal((await h.kvGet('http_upstreams/api'))?.value, '{"servers":[{"host":"10.0.0.1","port":80}]}')
})

test('an API deletion is recorded for the guard with the ModifyIndex it removes', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  const index = (await h.kvGet('http_upstreams/api'))?.modifyIndex
  await h.request('DELETE', '/upstream/api')
  assert.deepEqual(h.controls.adminDeletions, [{ key: 'http_upstreams/api', modifyIndex: index }])
})

test('stream upstreams: PUT, GET one and all, DELETE; a port without a listener is accepted with a WARN', async (t) => {
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(chunk.toString()); done() } }))
  const h = await startAdminHarness(t, { log, config: { stream: { listen: ['127.0.0.1:3131'] } } })
  const body = '{"mode":"ip_hash","servers":[{"host":"127.0.0.1","port":6379}]}'
  const put = await h.request('PUT', '/stream_upstream/3131', { body })
  assert.equal(put.text, '{"status":200}')
  assert.deepEqual((await h.request('GET', '/stream_upstream/3131')).json(), { mode: 'ip_hash', cluster: [{ servers: [{ host: '127.0.0.1', port: 6379 }] }] })
  assert.ok((await statusOf(h))['cls:stream:3131'])
  assert.equal(lines.filter((line) => line.includes('no stream listener')).length, 0)
  await h.request('PUT', '/stream_upstream/4000', { body })
  assert.deepEqual(Object.keys((await h.request('GET', '/stream_upstreams')).json() as object), ['3131', '4000'])
  const warning = lines.map((line) => JSON.parse(line) as { level: number; msg: string }).find((line) => line.msg.includes('no stream listener'))
  assert.equal(warning?.level, 40)
  assert.equal((await h.request('DELETE', '/stream_upstream/3131')).text, '{"status":200}')
  assert.equal((await h.request('GET', '/stream_upstream/3131')).text, '{"status":404,"msg":"stream upstream 3131 not found"}')
})

test("a value over Consul's 512 KiB limit is 413 and nothing is written", async (t) => {
  const h = await startAdminHarness(t)
  const res = await h.request('POST', '/upstream/big', { body: JSON.stringify({ servers: [], note: 'a'.repeat(600 * 1024) }) })
  assert.equal(res.status, 413)
  assert.equal(res.text, '{"status":413,"msg":"value too large for consul (max 524288 bytes)"}')
  assert.equal(await h.kvGet('http_upstreams/big'), undefined)
})

test("Consul's 403 on a write is a 502 carrying Consul's text", async (t) => {
  const consul = await startDevConsul(t, {
    acl_token: 'root',
    acl_tokens: [{ secret: 'read-only-token', accessor: '22222222-2222-2222-2222-222222222222', read: ['config/'], write: [] }],
  })
  const h = await startAdminHarness(t, { consul, config: { consul: { token: 'read-only-token' } } })
  const res = await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  assert.equal(res.status, 502)
  assert.equal(
    res.text,
    '{"status":502,"msg":"consul refused the write: Permission denied: token with AccessorID \'22222222-2222-2222-2222-222222222222\' ' +
      'lacks permission \'key:write\' on \\"config/slardar/http_upstreams/api\\""}',
  )
})

test('a value rejected in Consul can be fixed through the API: its ETag and CAS base are the rejected version', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  await h.kvSet('http_upstreams/api', '{"servers":[{"host":"x y","port":80}]}')
  const rejected = (await h.kvGet('http_upstreams/api'))?.modifyIndex
  await waitFor(() => h.primary.state.rejections.get('http_upstreams/api')?.modifyIndex === rejected, { withinMs: 3000, what: 'the bad value to be rejected' })
  const shown = await h.request('GET', '/upstream/api')
  assert.deepEqual(shown.json(), { cluster: [{ servers: [{ host: '127.0.0.1', port: 9001 }] }] }, 'the served value is shown')
  assert.equal(shown.headers.etag, `"${rejected}"`)
  const fixed = await h.request('PUT', '/upstream/api', { body: upstreamBody(9002), headers: { 'If-Match': shown.headers.etag as string } })
  assert.equal(fixed.status, 200)
  assert.equal(h.primary.state.rejections.has('http_upstreams/api'), false)
})

test('DELETE honours If-Match: a stale index is 409 and the upstream stays', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001) })
  const res = await h.request('DELETE', '/upstream/api', { headers: { 'If-Match': '"3"' } })
  assert.equal(res.status, 409)
  assert.ok(await h.kvGet('http_upstreams/api'))
})

test('read-your-writes: with a slow apply on this node the 200 comes only once this node serves the change', async (t) => {
  const h = await startAdminHarness(t)
  h.controls.applyDelayMs = 400
  const startedMs = performance.now()
  const res = await h.request('POST', '/upstream/slow', { body: upstreamBody(9001) })
  assert.equal(res.status, 200)
  assert.ok(performance.now() - startedMs >= 350, 'the answer waited for the apply')
  assert.ok((await statusOf(h))['cls:slow'], 'a GET /status that follows shows the change')
  assert.ok(h.primary.state.served.has('http_upstreams/slow'))
})

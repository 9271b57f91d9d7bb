import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { AdminAccess } from '../../src/admin/security.js'
import { startAdminHarness, upstreamBody } from '../support/admin-harness.js'

const TOKEN = 'a-long-admin-token-0123456789'

function recordingLog(): { lines: string[]; log: pino.Logger } {
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(chunk.toString()); done() } }))
  return { lines, log }
}

test('on a loopback listener only localhost, IP literals and admin.allowed_hosts pass the Host check', async (t) => {
  const h = await startAdminHarness(t, { config: { admin: { allowed_hosts: ['admin.internal'] } } })
  const port = h.admin.port
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '10.1.2.3', `admin.internal:${port}`, 'Admin.Internal.']) {
    assert.equal((await h.request('GET', '/healthz', { headers: { Host: host } })).status, 200, host)
  }
  for (const host of [`evil.example.com:${port}`, 'localhost.evil.example', 'rebind.attacker', 'a b']) {
    const res = await h.request('GET', '/healthz', { headers: { Host: host } })
    assert.equal(res.status, 403, host)
    assert.equal(res.text, '{"status":403,"msg":"host not allowed"}')
  }
})

test('the Host check is off when the listener is not on loopback', () => {
  const access = new AdminAccess({ listenHost: '10.0.0.5', port: 1995, token: null, protectReads: false, allowedHosts: [] })
  assert.equal(access.check('GET', '/status', { host: 'proxy.example.com:1995' }), null)
  const loopback = new AdminAccess({ listenHost: '127.0.0.1', port: 1995, token: null, protectReads: false, allowedHosts: [] })
  assert.equal(loopback.check('GET', '/status', { host: 'proxy.example.com:1995' })?.reason, 'host')
})

test('a request with a foreign Origin is 403; no Origin or the listener\'s own origin passes', async (t) => {
  const h = await startAdminHarness(t)
  const own = `http://127.0.0.1:${h.admin.port}`
  assert.equal((await h.request('GET', '/upstreams', { headers: { Origin: own } })).status, 200)
  assert.equal((await h.request('GET', '/upstreams', { headers: { Origin: `http://localhost:${h.admin.port}`, Host: `localhost:${h.admin.port}` } })).status, 200)
  for (const origin of ['http://evil.example', 'null', `https://127.0.0.1:${h.admin.port}`, `http://127.0.0.1:${h.admin.port + 1}`]) {
    const res = await h.request('POST', '/upstream/api', { body: upstreamBody(9001), headers: { Origin: origin } })
    assert.equal(res.status, 403, origin)
    assert.equal(res.text, '{"status":403,"msg":"cross-origin requests are not accepted"}')
  }
  assert.equal(await h.kvGet('http_upstreams/api'), undefined)
})

test('with admin.token set a write needs it, as Bearer or X-Slardar-Token; a read does not', async (t) => {
  const h = await startAdminHarness(t, { config: { admin: { token: TOKEN } } })
  const body = upstreamBody(9001)
  const refused: Record<string, string>[] = [
    {},
    { Authorization: 'Bearer wrong-token-value-0000000' },
    { Authorization: `Basic ${TOKEN}` },
    { 'X-Slardar-Token': 'wrong' },
    // Authorization wins when present, even with a correct X-Slardar-Token beside it.
    { Authorization: 'Bearer wrong', 'X-Slardar-Token': TOKEN },
    { Authorization: `Bearer ${TOKEN}x` },
  ]
  for (const headers of refused) {
    const res = await h.request('POST', '/upstream/api', { body, headers })
    assert.equal(res.status, 401, JSON.stringify(headers))
    assert.equal(res.text, '{"status":401,"msg":"missing or invalid admin token"}')
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="slardar"')
  }
  assert.equal(await h.kvGet('http_upstreams/api'), undefined)
  assert.equal((await h.request('POST', '/upstream/api', { body, headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200)
  assert.equal((await h.request('DELETE', '/upstream/api', { headers: { 'X-Slardar-Token': TOKEN } })).status, 200)
  assert.equal((await h.request('PATCH', '/upstream/api')).status, 401, 'an unknown method counts as a write')
  assert.equal((await h.request('POST', '/guard/release')).status, 401)
  assert.equal((await h.request('GET', '/upstreams')).status, 200)
  assert.equal((await h.request('GET', '/status')).status, 200)
})

test('with protect_reads every read needs the token too, except /healthz, /readyz and /version', async (t) => {
  const h = await startAdminHarness(t, { config: { admin: { token: TOKEN, protect_reads: true } } })
  for (const path of ['/status', '/upstreams', '/upstream/x', '/lua', '/js/x', '/metrics', '/y_nginx_status', '/nope']) {
    assert.equal((await h.request('GET', path)).status, 401, path)
    assert.equal((await h.request('HEAD', path)).status, 401, path)
  }
  assert.equal((await h.request('GET', '/status', { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200)
  for (const path of ['/healthz', '/readyz', '/version']) assert.equal((await h.request('GET', path)).status, 200, path)
})

test('the checks run in order: Host, then Origin, then the token', async (t) => {
  const h = await startAdminHarness(t, { config: { admin: { token: TOKEN } } })
  const both = await h.request('POST', '/upstream/api', { headers: { Host: 'evil.example', Origin: 'http://evil.example' } })
  assert.equal(both.text, '{"status":403,"msg":"host not allowed"}')
  const originAndToken = await h.request('POST', '/upstream/api', { headers: { Origin: 'http://evil.example' } })
  assert.equal(originAndToken.text, '{"status":403,"msg":"cross-origin requests are not accepted"}')
})

test('a refused token is logged at WARN with the remote address, and no token value ever reaches the log', async (t) => {
  const { lines, log } = recordingLog()
  const h = await startAdminHarness(t, { log, config: { admin: { token: TOKEN } } })
  const wrong = 'wrong-token-value-that-must-not-be-logged'
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001), headers: { Authorization: `Bearer ${wrong}` } })
  await h.request('POST', '/upstream/api', { body: upstreamBody(9001), headers: { 'X-Slardar-Token': TOKEN } })
  const warning = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['check'] === 'token')
  assert.equal(warning?.['level'], 40)
  assert.equal(warning?.['remote'], '127.0.0.1')
  for (const line of lines) {
    assert.ok(!line.includes(wrong), line)
    assert.ok(!line.includes(TOKEN), line)
  }
})

test('a token of any other length or encoding is refused, and the Bearer scheme is case-insensitive', () => {
  const access = new AdminAccess({ listenHost: '127.0.0.1', port: 1995, token: TOKEN, protectReads: false, allowedHosts: [] })
  for (const presented of ['', 'x', TOKEN.slice(0, -1), `${TOKEN}${TOKEN}`, 'é'.repeat(40)]) {
    assert.equal(access.check('POST', '/upstream/a', { host: '127.0.0.1', authorization: `Bearer ${presented}` })?.reason, 'token', presented)
  }
  assert.equal(access.check('POST', '/upstream/a', { host: '127.0.0.1', authorization: `bearer ${TOKEN}` }), null)
})

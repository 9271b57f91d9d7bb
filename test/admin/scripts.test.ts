import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { type AdminHarness, startAdminHarness } from '../support/admin-harness.js'
import { waitFor } from '../support/wait-for.js'

const EXIT_SCRIPT = 'return slardar.exit(errno.EXIT_TRY_CODE)'

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex')
}

interface ScriptList {
  global_version: number
  commit_version: string
  modules: { name: string; version: string; time: string }[]
  errors: { name: string; version: string; error: string; time: string }[]
}

async function listOf(h: AdminHarness, family = 'lua'): Promise<ScriptList> {
  const res = await h.request('GET', `/${family}`)
  assert.equal(res.status, 200)
  return res.json() as ScriptList
}

async function waitUntilServed(h: AdminHarness, keys: readonly string[]): Promise<void> {
  const indexes = await Promise.all(keys.map(async (key) => (await h.kvGet(key))?.modifyIndex ?? 0n))
  await waitFor(() => keys.every((key, i) => (h.primary.state.served.get(key)?.entry.modifyIndex ?? -1n) >= (indexes[i] as bigint)), {
    withinMs: 3000,
    what: `${keys.length} keys to be applied`,
  })
}

test("Slardar's staged-script test: POST stages (not active), PUT activates, a second PUT is 'code already loaded'", async (t) => {
  const h = await startAdminHarness(t)
  const staged = await h.request('POST', '/lua/script.test', { body: EXIT_SCRIPT })
  assert.equal(staged.status, 200)
  assert.equal(staged.text, '"ok"')
  assert.equal((await h.kvGet('lua/.staged/script.test'))?.value, EXIT_SCRIPT)
  assert.equal(await h.kvGet('lua/script.test'), undefined)
  assert.equal((await h.request('GET', '/lua/script.test')).text, '{}')
  assert.deepEqual((await listOf(h)).modules, [])

  assert.equal((await h.request('POST', '/lua/script.test', { body: EXIT_SCRIPT })).text, '"code already in shdict"')

  const activated = await h.request('PUT', '/lua/script.test')
  assert.equal(activated.text, '"ok"')
  assert.equal((await h.kvGet('lua/script.test'))?.value, EXIT_SCRIPT)
  const one = (await h.request('GET', '/lua/script.test')).json() as { name: string; version: string; time: string }
  assert.equal(one.name, 'script.test')
  assert.equal(one.version, md5(EXIT_SCRIPT))
  assert.match(one.time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)
  assert.equal((await h.kvGet('lua/.staged/script.test'))?.value, EXIT_SCRIPT, 'the staged copy stays')

  const indexBefore = (await h.kvGet('lua/script.test'))?.modifyIndex
  assert.equal((await h.request('PUT', '/lua/script.test')).text, '"code already loaded"')
  assert.equal((await h.kvGet('lua/script.test'))?.modifyIndex, indexBefore)
})

test('GET /lua reports global_version, commit_version "0", modules sorted by name and an empty errors list', async (t) => {
  const h = await startAdminHarness(t)
  assert.deepEqual(await listOf(h), { global_version: 0, commit_version: '0', modules: [], errors: [] })
  await h.request('POST', '/lua/modules.b', { body: 'return {}' })
  assert.equal((await listOf(h)).global_version, 0, 'staging changes nothing active')
  await h.request('PUT', '/lua/modules.b')
  await h.request('POST', '/lua/modules.a', { body: 'return { a = 1 }' })
  await h.request('PUT', '/lua/modules.a')
  const list = await listOf(h)
  assert.equal(list.global_version, 2)
  assert.deepEqual(list.modules.map((module) => [module.name, module.version]), [['modules.a', md5('return { a = 1 }')], ['modules.b', md5('return {}')]])
})

test('a compile error at POST is a 400 naming the line, and nothing is staged', async (t) => {
  const h = await startAdminHarness(t)
  const res = await h.request('POST', '/lua/modules.bad', { body: 'local x = 1\nif x then\n' })
  assert.equal(res.status, 400)
  const msg = (res.json() as { msg: string }).msg
  assert.match(msg, /^compile error: .*modules\.bad.*:3:/)
  assert.equal(await h.kvGet('lua/.staged/modules.bad'), undefined)
})

test("PUT of a name with nothing staged answers 'code not found in shdict'", async (t) => {
  const h = await startAdminHarness(t)
  const res = await h.request('PUT', '/lua/script.none')
  assert.equal(res.status, 200)
  assert.equal(res.text, '"code not found in shdict"')
})

test('PUT /lua activates modules first, then scripts, each by name, in transactions of at most 32 names', async (t) => {
  const h = await startAdminHarness(t)
  const modules = Array.from({ length: 35 }, (_, i) => `m${String(i).padStart(2, '0')}`)
  const scripts = ['script.e', 'script.a', 'script.c']
  const keys = [...modules, ...scripts].map((name) => `lua/.staged/${name}`)
  for (const key of [...keys].reverse()) await h.kvSet(key, `return "${key}"`)
  await waitUntilServed(h, keys)
  const res = await h.request('PUT', '/lua')
  assert.equal(res.text, '"ok"')
  const indexOf = async (name: string): Promise<bigint> => {
    const entry = await h.kvGet(`lua/${name}`)
    assert.ok(entry !== undefined, `${name} is active`)
    return entry.modifyIndex
  }
  const first = await indexOf('m00')
  for (const name of modules.slice(0, 32)) assert.equal(await indexOf(name), first, `${name} in the first transaction`)
  const second = await indexOf('m32')
  assert.ok(second > first)
  for (const name of ['m33', 'm34', 'script.a', 'script.c', 'script.e']) assert.equal(await indexOf(name), second, `${name} in the second transaction`)
  assert.equal((await listOf(h)).modules.length, 38, 'applied on this node before the answer')
  assert.equal((await h.request('PUT', '/lua')).text, '"ok"', 'nothing left to activate')
})

test('PUT /lua/version sets commit_version; an empty or too long body is a 400', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('PUT', '/lua/version', { body: '2024-05-01-a1b2c3' })).text, '"ok"')
  assert.equal((await listOf(h)).commit_version, '2024-05-01-a1b2c3')
  assert.equal((await h.kvGet('lua/version'))?.value, '2024-05-01-a1b2c3')
  assert.equal((await h.request('PUT', '/lua/version')).text, '{"status":400,"msg":"empty body"}')
  const long = await h.request('PUT', '/lua/version', { body: 'x'.repeat(201) })
  assert.equal(long.text, '{"status":400,"msg":"invalid version: at most 200 characters"}')
  assert.equal((await h.request('PUT', '/lua/version', { body: 'y'.repeat(200) })).text, '"ok"')
})

test("DELETE /lua/<name> removes the active and the staged key in one step, and answers 'ok' for unknown names", async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/lua/modules.a', { body: 'return {}' })
  await h.request('PUT', '/lua/modules.a')
  const res = await h.request('DELETE', '/lua/modules.a')
  assert.equal(res.text, '"ok"')
  assert.equal(await h.kvGet('lua/modules.a'), undefined)
  assert.equal(await h.kvGet('lua/.staged/modules.a'), undefined)
  assert.deepEqual((await listOf(h)).modules, [], 'applied before the answer')
  assert.equal((await h.request('DELETE', '/lua/never.there')).text, '"ok"')
})

test('POST /lua and DELETE /lua are 405 with Allow: GET, HEAD, PUT', async (t) => {
  const h = await startAdminHarness(t)
  for (const method of ['POST', 'DELETE']) {
    const res = await h.request(method, '/lua')
    assert.equal(res.status, 405)
    assert.equal(res.text, '{"status":405,"msg":"method not allowed"}')
    assert.equal(res.headers.allow, 'GET, HEAD, PUT')
  }
})

test('invalid and reserved script names are 400 with the name', async (t) => {
  const h = await startAdminHarness(t)
  const cases: [string, string, string][] = [
    ['POST', '/lua/.hidden', 'invalid name \\".hidden\\": must not start with \\".\\"'],
    ['POST', '/lua/.staged/x', 'invalid name \\".staged/x\\": must match [-_a-zA-Z0-9.]+'],
    ['POST', '/lua/version', 'invalid name \\"version\\": \\"version\\" is the commit-version key'],
    ['GET', '/lua/version', 'invalid name \\"version\\": \\"version\\" is the commit-version key'],
    ['POST', '/lua/cjson', 'invalid name \\"cjson\\": reserved for the built-in Lua module'],
    ['POST', '/lua/script.Upper.com', 'invalid name \\"script.Upper.com\\": per-host script names must be lower-case (routing hosts are lower-cased)'],
    ['DELETE', '/js/a%2Fb', 'invalid name \\"a%2Fb\\": must match [-_a-zA-Z0-9.]+'],
  ]
  for (const [method, path, msg] of cases) {
    const res = await h.request(method, path, { body: 'return 1' })
    assert.equal(res.text, `{"status":400,"msg":"${msg}"}`, `${method} ${path}`)
  }
  assert.equal((await h.request('POST', '/js/cjson', { body: 'module.exports = {}' })).status, 200, 'cjson is reserved for Lua only')
})

test('an empty POST is 400 "empty body"; a source over 512 KiB is 413', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('POST', '/lua/modules.a')).text, '{"status":400,"msg":"empty body"}')
  const large = await h.request('POST', '/lua/modules.a', { body: `return "${'a'.repeat(524_289)}"` })
  assert.equal(large.status, 413)
  assert.equal(large.text, '{"status":413,"msg":"value too large for consul (max 524288 bytes)"}')
})

test('?dry_run=1 runs the compile check and stages nothing', async (t) => {
  const h = await startAdminHarness(t)
  assert.equal((await h.request('POST', '/lua/modules.a?dry_run=1', { body: 'return {}' })).text, '"ok"')
  assert.equal((await h.request('POST', '/lua/modules.a?dry_run=1', { body: 'return {' })).status, 400)
  assert.equal(await h.kvGet('lua/.staged/modules.a'), undefined)
})

test('a staged key changed by someone else between read and activation is a 409 for the script', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/lua/script.test', { body: 'return 1' })
  await h.primary.consulWatch?.stop()
  await h.kvSet('lua/.staged/script.test', 'return 2')
  const now = (await h.kvGet('lua/.staged/script.test'))?.modifyIndex
  const res = await h.request('PUT', '/lua/script.test')
  assert.equal(res.status, 409)
  assert.equal(res.text, `{"status":409,"msg":"script script.test was changed by someone else (ModifyIndex now ${now}); re-read and retry"}`)
  assert.equal(await h.kvGet('lua/script.test'), undefined)
})

test('a version from Consul that fails to compile is listed in errors while the previous one stays active', async (t) => {
  const h = await startAdminHarness(t)
  await h.request('POST', '/lua/modules.x', { body: 'return {}' })
  await h.request('PUT', '/lua/modules.x')
  const broken = 'return {\n'
  await h.kvSet('lua/modules.x', broken)
  const list = await waitFor(async () => {
    const current = await listOf(h)
    return current.errors.length > 0 ? current : null
  }, { withinMs: 3000, what: 'the compile error to be listed' })
  assert.equal(list.errors[0]?.name, 'modules.x')
  assert.equal(list.errors[0]?.version, md5(broken))
  assert.match(list.errors[0]?.error ?? '', /^lua\/modules\.x: /)
  assert.deepEqual(list.modules.map((module) => module.version), [md5('return {}')])
})

test('/js works the same way with a JS parse as its compile check', async (t) => {
  const h = await startAdminHarness(t)
  const bad = await h.request('POST', '/js/script.test', { body: 'module.exports = {' })
  assert.equal(bad.status, 400)
  assert.match((bad.json() as { msg: string }).msg, /^compile error: /)
  const source = 'exports.onRequest = (ctx) => {}'
  assert.equal((await h.request('POST', '/js/script.test', { body: source })).text, '"ok"')
  assert.equal((await h.request('PUT', '/js')).text, '"ok"')
  const list = await listOf(h, 'js')
  assert.deepEqual(list.modules.map((module) => [module.name, module.version]), [['script.test', md5(source)]])
  assert.equal(list.global_version, 1)
  assert.deepEqual((await listOf(h, 'lua')).modules, [], 'the Lua family is untouched')
  assert.equal((await h.request('PUT', '/js/version', { body: 'v1' })).text, '"ok"')
  assert.equal((await listOf(h, 'js')).commit_version, 'v1')
})

/** consul.md §25 G50–G56: sessions, locks, lock-delay and TTL expiry, with `session_ttl_min_ms: 1000`. */

import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import { quietWindow, waitFor } from '../../support/wait-for.js'
import { after, assertPrompt, entries, indexOf, startServer, type Http } from './conformance.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const UNKNOWN = '11111111-2222-3333-4444-555555555555'

interface SessionJson {
  readonly ID: string
  readonly Name: string
  readonly Behavior: string
  readonly LockDelay: number
  readonly TTL: string
  readonly NodeChecks: string[]
}

function sessionServer(t: TestContext): ReturnType<typeof startServer> {
  return startServer(t, { session_ttl_min_ms: 1000 })
}

async function createSession(http: Http, body: object): Promise<string> {
  const answer = await http('PUT', '/v1/session/create', { body: JSON.stringify(body) })
  assert.equal(answer.status, 200, answer.text)
  const { ID } = answer.json() as { ID: string }
  assert.match(ID, UUID)
  return ID
}

async function info(http: Http, id: string): Promise<SessionJson[]> {
  const answer = await http('GET', `/v1/session/info/${id}`)
  assert.equal(answer.status, 200)
  return answer.json() as SessionJson[]
}

async function lockOf(http: Http, key: string): Promise<{ LockIndex: number; Session?: string; Value: string | null }> {
  const entry = entries(await http('GET', `/v1/kv/${key}`))[0]
  assert.ok(entry !== undefined)
  return entry
}

/** s1 holds svc/leader (LockIndex 1) — rows G51–G54 build on it. */
async function lockedBy(http: Http, body: object = { LockDelay: '1s' }): Promise<string> {
  const session = await createSession(http, body)
  assert.equal((await http('PUT', `/v1/kv/svc/leader?acquire=${session}`, { body: 'node-a' })).json(), true)
  return session
}

describe('G. sessions and locks', { concurrency: true }, () => {
  test('G50: create answers a lower-case UUID; an empty body gets Consul defaults (release, 15 s, serfHealth)', async (t) => {
    const { http, dev } = await sessionServer(t)
    const s1 = await createSession(http, { Name: 'leader', TTL: '10s', LockDelay: '1s' })
    const s2 = await createSession(http, { LockDelay: '1s' })
    const s3 = await createSession(http, { LockDelay: '1s' })
    assert.equal(new Set([s1, s2, s3]).size, 3)
    const plain = await createSession(http, {})
    const [session] = await info(http, plain)
    assert.equal(session?.Behavior, 'release')
    assert.equal(session?.LockDelay, 15_000_000_000)
    assert.deepEqual(session?.NodeChecks, ['serfHealth'])
    const [named] = await info(http, s1)
    assert.equal(named?.Name, 'leader')
    const viaClient = (await dev.consul.session.create()) as { ID: string }
    assert.match(viaClient.ID, UUID)
    const shown = (await dev.consul.session.info(viaClient.ID)) as SessionJson | undefined
    assert.equal(shown?.Behavior, 'release')
  })

  test('G51: acquire locks the key (LockIndex 1, Session); the holder may rewrite it; another session is refused', async (t) => {
    const { http } = await sessionServer(t)
    const s1 = await lockedBy(http)
    const s2 = await createSession(http, { LockDelay: '1s' })
    let entry = await lockOf(http, 'svc/leader')
    assert.equal(entry.LockIndex, 1)
    assert.equal(entry.Session, s1)
    assert.equal((await http('PUT', `/v1/kv/svc/leader?acquire=${s1}`, { body: 'node-a2' })).json(), true)
    entry = await lockOf(http, 'svc/leader')
    assert.equal(entry.LockIndex, 1)
    assert.equal(entry.Value, Buffer.from('node-a2').toString('base64'))
    assert.equal((await http('PUT', `/v1/kv/svc/leader?acquire=${s2}`, { body: 'node-b' })).json(), false)
    assert.deepEqual(await lockOf(http, 'svc/leader'), entry)
  })

  test('G52: only the holder can release; release clears Session and keeps LockIndex; the next acquire bumps it', async (t) => {
    const { http } = await sessionServer(t)
    const s1 = await lockedBy(http)
    const s2 = await createSession(http, { LockDelay: '1s' })
    assert.equal((await http('PUT', `/v1/kv/svc/leader?release=${s2}`)).json(), false)
    assert.equal((await http('PUT', `/v1/kv/svc/leader?release=${s1}`)).json(), true)
    const released = await lockOf(http, 'svc/leader')
    assert.equal(released.Session, undefined)
    assert.equal(released.LockIndex, 1)
    assert.equal((await http('PUT', `/v1/kv/svc/leader?acquire=${s2}`, { body: 'node-b' })).json(), true)
    assert.equal((await lockOf(http, 'svc/leader')).LockIndex, 2)
  })

  test('G53: acquire with an empty session is 500 missing session; with an unknown one 500 invalid session', async (t) => {
    const { http } = await sessionServer(t)
    const empty = await http('PUT', '/v1/kv/svc/leader?acquire=', { body: 'x' })
    assert.equal(empty.status, 500)
    assert.equal(empty.text, 'missing session')
    const unknown = await http('PUT', `/v1/kv/svc/leader?acquire=${UNKNOWN}`, { body: 'x' })
    assert.equal(unknown.status, 500)
    assert.ok(unknown.text.includes(`invalid session "${UNKNOWN}"`), unknown.text)
  })

  test('G54: destroying the holder wakes a waiter with the lock released, then lock-delay refuses acquires for 1 s', async (t) => {
    const { http } = await sessionServer(t)
    const s2 = await lockedBy(http)
    const s3 = await createSession(http, { LockDelay: '1s' })
    const held = await http('GET', '/v1/kv/svc/leader')
    const blocked = http('GET', `/v1/kv/svc/leader?index=${indexOf(held)}&wait=5s`)
    let destroyedAtMs = 0
    const destroyReturnedAtMs = await after(50, async () => {
      assert.equal((await http('PUT', `/v1/session/destroy/${s2}`)).json(), true)
      destroyedAtMs = performance.now()
      assert.equal((await http('PUT', `/v1/kv/svc/leader?acquire=${s3}`, { body: 'node-c' })).json(), false)
    })
    const answer = await blocked
    assertPrompt(answer, destroyReturnedAtMs, 'waiter on the released key')
    const [entry] = entries(answer)
    assert.equal(entry?.Session, undefined)
    assert.equal(entry?.LockIndex, 1)
    await quietWindow(Math.max(0, 1100 - (performance.now() - destroyedAtMs)))
    assert.equal((await http('PUT', `/v1/kv/svc/leader?acquire=${s3}`, { body: 'node-c' })).json(), true)
  })

  test('G55: renew answers the session; an unknown id is 404 on renew and [] on info', async (t) => {
    const { http, dev } = await sessionServer(t)
    const s1 = await createSession(http, { Name: 'leader', TTL: '10s', LockDelay: '1s' })
    const renewed = await http('PUT', `/v1/session/renew/${s1}`)
    assert.equal(renewed.status, 200)
    const [session] = renewed.json() as SessionJson[]
    assert.equal(session?.LockDelay, 1_000_000_000)
    assert.equal(session?.TTL, '10s')
    const missing = await http('PUT', `/v1/session/renew/${UNKNOWN}`)
    assert.equal(missing.status, 404)
    assert.equal(missing.text, `Session id '${UNKNOWN}' not found`)
    await assert.rejects(dev.consul.session.renew(UNKNOWN), { message: `Session id '${UNKNOWN}' not found` })
    const none = await http('GET', `/v1/session/info/${UNKNOWN}`)
    assert.deepEqual(none.json(), [])
    assert.ok(indexOf(none) >= 1n)
    assert.equal(await dev.consul.session.info(UNKNOWN), undefined)
  })

  test('G56: an unrenewed 1 s TTL session expires within [1 s, 2.5 s] and frees its key; a renewed one lives on', async (t) => {
    const { http } = await sessionServer(t)
    const createdAtMs = performance.now()
    const mortal = await createSession(http, { TTL: '1s', LockDelay: '0s' })
    assert.equal((await http('PUT', `/v1/kv/ttl-key?acquire=${mortal}`, { body: 'x' })).json(), true)
    const kept = await createSession(http, { TTL: '1s' })
    const renewer = setInterval(() => void http('PUT', `/v1/session/renew/${kept}`), 400)
    t.after(() => clearInterval(renewer))

    await waitFor(async () => (await info(http, mortal)).length === 0, { withinMs: 3000, what: 'the TTL session to expire', everyMs: 25 })
    const expiredAfterMs = performance.now() - createdAtMs
    assert.ok(expiredAfterMs >= 1000 && expiredAfterMs <= 2500, `expired after ${expiredAfterMs.toFixed(0)} ms`)
    assert.equal((await lockOf(http, 'ttl-key')).Session, undefined)

    await quietWindow(Math.max(0, 5000 - (performance.now() - createdAtMs)))
    assert.equal((await info(http, kept)).length, 1, 'the renewed session is alive after 5 s')
  })
})

describe('§21 session details', { concurrency: true }, () => {
  test('create validates TTL, Behavior, Node and the JSON body with Consul texts', async (t) => {
    const { http } = await sessionServer(t)
    const tooShort = await http('PUT', '/v1/session/create', { body: '{"TTL":"500ms"}' })
    assert.equal(tooShort.status, 500)
    assert.equal(tooShort.text, "Invalid Session TTL '500000000', must be between [1s=24h0m0s]")
    const behavior = await http('PUT', '/v1/session/create', { body: '{"Behavior":"explode"}' })
    assert.equal(behavior.text, "Invalid Behavior setting 'explode'")
    const node = await http('PUT', '/v1/session/create', { body: '{"Node":"elsewhere"}' })
    assert.equal(node.text, 'Missing node registration')
    const bad = await http('PUT', '/v1/session/create', { body: '{nope' })
    assert.equal(bad.status, 400)
    assert.ok(bad.text.startsWith('Request decode failed: '), bad.text)
  })

  test('a delete-behavior session deletes its keys when destroyed; list and node show live sessions', async (t) => {
    const { http } = await sessionServer(t)
    const session = await createSession(http, { Behavior: 'delete', LockDelay: 0 })
    await http('PUT', `/v1/kv/eph?acquire=${session}`, { body: 'x' })
    assert.equal(((await http('GET', '/v1/session/list')).json() as SessionJson[]).length, 1)
    assert.equal(((await http('GET', '/v1/session/node/node1')).json() as SessionJson[]).length, 1)
    await http('PUT', `/v1/session/destroy/${session}`)
    assert.equal((await http('GET', '/v1/kv/eph')).status, 404)
    assert.deepEqual((await http('GET', '/v1/session/list')).json(), [])
    assert.equal((await http('PUT', '/v1/session/destroy/')).text, 'Missing session')
  })

  test('session info blocks on the session index and wakes when the session goes', async (t) => {
    const { http } = await sessionServer(t)
    const session = await createSession(http, {})
    const first = await http('GET', `/v1/session/info/${session}`)
    const blocked = http('GET', `/v1/session/info/${session}?index=${indexOf(first)}&wait=5s`)
    const destroyReturnedAtMs = await after(100, () => http('PUT', `/v1/session/destroy/${session}`))
    const answer = await blocked
    assertPrompt(answer, destroyReturnedAtMs, 'session info')
    assert.deepEqual(answer.json(), [])
  })
})

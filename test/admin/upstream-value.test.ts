import assert from 'node:assert/strict'
import { test } from 'node:test'
import { displayForm, isNestedTooDeeply, MASKED, mergeServersBody, restoreMaskedSecrets, toClusterForm } from '../../src/admin/upstream-value.js'

test('the servers form is shown as a one-level cluster in place, other fields kept as written', () => {
  assert.deepEqual(JSON.stringify(toClusterForm({ mode: 'hash', servers: [{ host: 'a', port: 1 }], try: 2 })),
    '{"mode":"hash","cluster":[{"servers":[{"host":"a","port":1}]}],"try":2}')
  const cluster = { cluster: [{ servers: [] }] }
  assert.equal(toClusterForm(cluster), cluster)
})

test('pass, password, token and secret are masked at any depth and in any case', () => {
  const shown = displayForm({ Password: 'x', http_opts: { headers: { token: 't', other: 'o' } }, servers: [{ host: 'a', port: 1, secret: { nested: 1 } }], pass: 0 })
  assert.deepEqual(shown, {
    Password: MASKED, http_opts: { headers: { token: MASKED, other: 'o' } }, cluster: [{ servers: [{ host: 'a', port: 1, secret: MASKED }] }], pass: MASKED,
  })
})

test('a masked secret sent back takes the stored value, found by the path as sent or in the shown cluster form', () => {
  const stored = { token: 'T', servers: [{ host: 'a', port: 1, password: 'P' }] }
  const viaCluster = restoreMaskedSecrets({ token: MASKED, cluster: [{ servers: [{ host: 'a', port: 1, password: MASKED }] }] }, stored)
  assert.deepEqual(viaCluster, { ok: true, value: { token: 'T', cluster: [{ servers: [{ host: 'a', port: 1, password: 'P' }] }] } })
  const viaServers = restoreMaskedSecrets({ servers: [{ host: 'a', port: 2, password: MASKED }] }, stored)
  assert.deepEqual(viaServers, { ok: true, value: { servers: [{ host: 'a', port: 2, password: 'P' }] } })
  assert.deepEqual(restoreMaskedSecrets({ servers: [{ password: MASKED }, { password: MASKED }] }, stored), { ok: false, path: 'servers[1].password' })
  assert.deepEqual(restoreMaskedSecrets({ token: 'new' }, stored), { ok: true, value: { token: 'new' } })
})

test('the servers merge keeps live fields except servers and cluster and lets the body win', () => {
  const live = { mode: 'hash', enable: false, cluster: [{ servers: [] }, { servers: [] }] }
  assert.deepEqual(mergeServersBody(live, { servers: [{ host: 'b', port: 2 }], enable: true }), { mode: 'hash', enable: true, servers: [{ host: 'b', port: 2 }] })
  assert.deepEqual(mergeServersBody(null, { servers: [] }), { servers: [] })
})

test('a field named __proto__ stays a plain field and never changes the prototype', () => {
  const body = JSON.parse('{"__proto__":{"polluted":true},"servers":[]}') as Record<string, unknown>
  const merged = mergeServersBody({}, body)
  assert.equal(Object.getPrototypeOf(merged), Object.prototype)
  assert.equal(JSON.stringify(merged), '{"__proto__":{"polluted":true},"servers":[]}')
  assert.equal(({} as { polluted?: boolean }).polluted, undefined)
})

test('nesting is bounded at 32 levels', () => {
  const nest = (depth: number): unknown => (depth === 0 ? 1 : [nest(depth - 1)])
  assert.equal(isNestedTooDeeply({ a: nest(31) }), false)
  assert.equal(isNestedTooDeeply({ a: nest(32) }), true)
})

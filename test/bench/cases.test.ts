import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CASES, selectCases } from '../../bench/cases.js'

test('plain make bench runs proxy-small, proxy-16k and retry', () => {
  const selected = selectCases([])
  assert.ok(selected.ok)
  assert.deepEqual(selected.cases.map((c) => c.name), ['proxy-small', 'proxy-16k', 'retry'])
})

test('"all" runs every case and named cases run in registry order', () => {
  const all = selectCases(['all'])
  assert.ok(all.ok)
  assert.equal(all.cases.length, CASES.length)
  const named = selectCases(['engines', 'proxy-small'])
  assert.ok(named.ok)
  assert.deepEqual(named.cases.map((c) => c.name), ['proxy-small', 'engines'])
})

test('an unknown case name is refused with the list of known ones', () => {
  const selected = selectCases(['proxy-smal'])
  assert.equal(selected.ok, false)
  assert.match(selected.ok ? '' : selected.message, /unknown case "proxy-smal"; known: proxy-small, proxy-16k, retry, .*engines, all/)
})

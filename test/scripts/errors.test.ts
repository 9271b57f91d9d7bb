import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { SCRIPT_ERROR, SCRIPT_ERROR_CODES, SCRIPT_TIMEOUT, ScriptStoreClosedError } from '../../src/scripts/index.js'
import { newStore } from './support.js'

test('every SCRIPT_ code is listed in SCRIPT_ERROR_CODES and in the module header', () => {
  const source = readFileSync(new URL('../../../src/scripts/errors.ts', import.meta.url), 'utf8')
  for (const code of Object.keys(SCRIPT_ERROR_CODES)) {
    assert.match(code, /^SCRIPT_[A-Z_]+$/)
    assert.ok(source.includes(`| \`${code}\``), `${code} not documented`)
  }
  assert.equal(new ScriptStoreClosedError('install').code, 'SCRIPT_STORE_CLOSED')
})

test('request failures use the x-error-codes of proxy.md §6', () => {
  assert.deepEqual(SCRIPT_ERROR, { xErrorCode: 50000001, msg: 'script error' })
  assert.deepEqual(SCRIPT_TIMEOUT, { xErrorCode: 50000002, msg: 'script timeout' })
})

test('a closed store refuses installs with a message saying what to do', async (t) => {
  const { store } = await newStore(t)
  store.close()
  assert.throws(() => store.install({ lua: new Map(), js: new Map() }), {
    code: 'SCRIPT_STORE_CLOSED',
    message: 'scripts: install called after the script store was closed; create a new store instead',
  })
})

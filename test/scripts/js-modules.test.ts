/** JS modules (scripts.md §3, §5): CommonJS require between js/ modules, cycles, load errors that keep the previous
 *  instance, and dependent reload, through a real store. */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ScriptStore } from '../../src/scripts/index.js'
import { decide, installOk, jsonBody, newStore, TEST_SCRIPT_OPTIONS } from './support.js'

const ANSWER_WITH_LIB = "const lib = require('lib.a'); exports.onRequest = (ctx) => ctx.respond(200, { value: lib.value })"

function install(store: ScriptStore, js: Record<string, string>): ReturnType<ScriptStore['install']> {
  return store.install({ lua: new Map(), js: new Map(Object.entries(js)) })
}

async function answer(store: ScriptStore): Promise<unknown> {
  return jsonBody(await decide(store))
}

test('require returns another module\'s exports, whether set on exports or by replacing module.exports', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'lib.a': "const b = require('lib.b'); module.exports = { value: b.twice(21) }",
    'lib.b': 'exports.twice = (n) => n * 2',
    'script.example.com': ANSWER_WITH_LIB,
  })
  assert.deepEqual(await answer(store), { value: 42 })
})

test('a require of a missing module fails the load with a message naming the module', async (t) => {
  const { store } = await newStore(t)
  const report = install(store, { 'script.example.com': "require('lib.missing'); exports.onRequest = () => {}" })
  assert.equal(report.js.errors.length, 1)
  const [error] = report.js.errors
  assert.equal(error?.code, 'SCRIPT_LOAD_FAILED')
  assert.match(error?.message ?? '', /^script\.example\.com: module 'lib\.missing' not found \(only js\/ modules can be required\) \(at .*js\/script\.example\.com:1:/)
  assert.equal(store.forHost('example.com'), null, 'a host script that never loaded is skipped')
})

test('a cycle gives the partial exports of the module still loading, as in Node', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'lib.a': "exports.early = 'a-early'; const b = require('lib.b'); exports.value = b.sawEarly + '/' + b.sawLate",
    'lib.b': "const a = require('lib.a'); exports.sawEarly = a.early; exports.sawLate = String(a.value)",
    'script.example.com': ANSWER_WITH_LIB,
  })
  assert.deepEqual(await answer(store), { value: 'a-early/undefined' })
})

test('a per-host script cannot be required', async (t) => {
  const { store } = await newStore(t)
  const report = install(store, {
    'script.other.test': 'exports.onRequest = () => {}',
    'lib.a': "module.exports = require('script.other.test')",
  })
  assert.match(report.js.errors[0]?.message ?? '', /module 'script\.other\.test' not found: script\.other\.test is a per-host script/)
})

test('module state persists across requests until the module is replaced', async (t) => {
  const { store } = await newStore(t)
  const counter = "let n = 0; exports.onRequest = (ctx) => ctx.respond(200, { n: ++n })"
  installOk(store, { 'script.example.com': counter })
  assert.deepEqual(await answer(store), { n: 1 })
  assert.deepEqual(await answer(store), { n: 2 })
  installOk(store, { 'script.example.com': counter + ' // v2' })
  assert.deepEqual(await answer(store), { n: 1 })
})

test('changing a module reloads at once every script and module that required it, directly or transitively', async (t) => {
  const { store } = await newStore(t)
  installOk(store, {
    'lib.a': "module.exports = { value: require('lib.base').name + '-a' }",
    'lib.base': "exports.name = 'v1'",
    'lib.unrelated': 'exports.x = 1',
    'script.example.com': ANSWER_WITH_LIB,
  })
  assert.deepEqual(await answer(store), { value: 'v1-a' })
  const before = store.catalog('js').active
  installOk(store, {
    'lib.a': "module.exports = { value: require('lib.base').name + '-a' }",
    'lib.base': "exports.name = 'v2'",
    'lib.unrelated': 'exports.x = 1',
    'script.example.com': ANSWER_WITH_LIB,
  })
  assert.deepEqual(await answer(store), { value: 'v2-a' })
  const after = store.catalog('js').active
  const timeOf = (list: typeof before, name: string): number | undefined => list.find((s) => s.name === name)?.timeMs
  assert.equal(timeOf(after, 'lib.unrelated'), timeOf(before, 'lib.unrelated'), 'an unrelated module is not reloaded')
})

test('a module whose top level throws is listed with its error and the previous instance keeps running', async (t) => {
  const { store } = await newStore(t)
  installOk(store, { 'lib.a': "exports.value = 'good'", 'script.example.com': ANSWER_WITH_LIB })
  const report = install(store, { 'lib.a': "exports.value = 'bad'\nthrow new Error('broken on purpose')", 'script.example.com': ANSWER_WITH_LIB })
  assert.equal(report.js.errors.length, 1)
  assert.match(report.js.errors[0]?.message ?? '', /^lib\.a: broken on purpose \(at .*js\/lib\.a:2:/)
  assert.deepEqual(await answer(store), { value: 'good' })
  assert.deepEqual(store.catalog('js').errors.map((e) => [e.name, e.code]), [['lib.a', 'SCRIPT_LOAD_FAILED']])
})

test('removing a required module fails the dependent reload, which keeps the previous instance', async (t) => {
  const { store } = await newStore(t)
  installOk(store, { 'lib.a': "exports.value = 'kept'", 'script.example.com': ANSWER_WITH_LIB })
  const report = install(store, { 'script.example.com': ANSWER_WITH_LIB })
  assert.deepEqual(report.js.errors.map((e) => e.name), ['script.example.com'])
  assert.match(report.js.errors[0]?.message ?? '', /module 'lib\.a' not found/)
  assert.deepEqual(await answer(store), { value: 'kept' })
})

test('a module that failed for a missing dependency loads when that dependency arrives', async (t) => {
  const { store } = await newStore(t)
  const first = install(store, { 'script.example.com': ANSWER_WITH_LIB })
  assert.equal(first.js.errors.length, 1)
  assert.equal(store.forHost('example.com'), null)
  installOk(store, { 'lib.a': "exports.value = 'arrived'", 'script.example.com': ANSWER_WITH_LIB })
  assert.deepEqual(await answer(store), { value: 'arrived' })
  assert.deepEqual(store.catalog('js').errors, [])
})

test('a require made by a hook at request time gets the module version installed now', async (t) => {
  const { store } = await newStore(t)
  const lazy = "exports.onRequest = (ctx) => ctx.respond(200, { value: require('lib.a').value })"
  installOk(store, { 'lib.a': "exports.value = 1", 'script.example.com': lazy })
  assert.deepEqual(await answer(store), { value: 1 })
  installOk(store, { 'lib.a': "exports.value = 2", 'script.example.com': lazy })
  assert.deepEqual(await answer(store), { value: 2 })
})

test('module top-level code that never ends is stopped by the budget and listed as a load error', async (t) => {
  const { store } = await newStore(t, { scripts: { ...TEST_SCRIPT_OPTIONS, timeout_ms: 40 } })
  const report = install(store, { 'lib.a': 'for (;;) { try { while (true) {} } catch {} }' })
  assert.deepEqual(report.js.errors.map((e) => e.message), ['lib.a: top-level code ran for more than 40 ms (scripts.timeout_ms)'])
})

/** Shared helpers for the scripts tests: a real ScriptStore (real Lua runtime, real vm realm) with a recording
 *  logger, a RequestView as the proxy builds it (plain data), and shortcuts that drive the ScriptHost seam exactly as
 *  the proxy does (forHost -> begin -> onRequest -> onResponse -> onLog). */

import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import pino from 'pino'
import type { RequestView } from '../../lua-compat/index.js'
import {
  ScriptStore, type RequestDecision, type ScriptFailure, type ScriptStoreOptions,
} from '../../src/scripts/index.js'

export type LogLine = Record<string, unknown> & { level: number; msg: string }

/** The budget is wall-clock (scripts.md §5): on a loaded CI machine a trivial script can be descheduled for tens of
 *  milliseconds, so tests that are not about the budget get a generous one; budget tests set `timeout_ms` themselves. */
export const TEST_SCRIPT_OPTIONS: ScriptStoreOptions['scripts'] = Object.freeze({
  timeout_ms: 1000,
  async_timeout_ms: 400,
  enable_lua: true,
  enable_js: true,
  regex_cache: 64,
  shared_dicts: {},
})

export interface TestStore {
  readonly store: ScriptStore
  readonly logs: LogLine[]
}

export async function newStore(t: TestContext, overrides: Partial<ScriptStoreOptions> = {}): Promise<TestStore> {
  const logs: LogLine[] = []
  const log = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as LogLine) } })
  const store = await ScriptStore.create({
    scripts: TEST_SCRIPT_OPTIONS,
    workerId: 0,
    workerCount: 1,
    log,
    readConfig: () => undefined,
    ...overrides,
  })
  t.after(() => store.close())
  return { store, logs }
}

/** Installs JS (and optionally Lua) sources given as plain objects; fails the test on any compile or load error. */
export function installOk(store: ScriptStore, js: Record<string, string>, lua: Record<string, string> = {}): void {
  const report = store.install({ lua: new Map(Object.entries(lua)), js: new Map(Object.entries(js)) })
  assert.deepEqual([...report.lua.errors, ...report.js.errors], [], 'install reported errors')
}

export function requestView(overrides: Partial<RequestView> = {}): RequestView {
  return {
    method: 'GET',
    target: '/path/to?a=1&b=two&b=2&sp=a+b%20c',
    host: 'example.com',
    httpVersion: '1.1',
    rawHeaders: ['Host', 'example.com', 'User-Agent', 'test-agent', 'X-Multi', 'one', 'X-Multi', 'two',
      'Cookie', 'sid=abc', 'Cookie', 'theme=dark'],
    remoteAddr: '::ffff:10.0.0.9',
    remotePort: 40001,
    serverAddr: '127.0.0.1',
    serverPort: 8080,
    requestId: 'req-0001',
    startTimeMs: Date.now(),
    readBody: () => Promise.resolve(Buffer.from('body-bytes')),
    ...overrides,
  }
}

/** Runs the request phase for `host` as the proxy does; fails when the host has no scripts. */
export async function decide(store: ScriptStore, view: RequestView = requestView()): Promise<RequestDecision> {
  const entry = store.forHost(view.host)
  assert.ok(entry !== null, `no scripts for ${view.host}`)
  return await entry.begin(view).onRequest()
}

export function assertContinue(decision: RequestDecision): Extract<RequestDecision, { kind: 'continue' }> {
  if (decision.kind !== 'continue') assert.fail(`expected continue, got ${describeDecision(decision)}`)
  return decision
}

export function assertRespond(decision: RequestDecision): Extract<RequestDecision, { kind: 'respond' }> {
  if (decision.kind !== 'respond') assert.fail(`expected respond, got ${describeDecision(decision)}`)
  return decision
}

export function assertFailure(decision: RequestDecision | ScriptFailure | null): ScriptFailure {
  if (decision === null || decision.kind !== 'error') assert.fail(`expected a script failure, got ${decision === null ? 'null' : describeDecision(decision)}`)
  return decision
}

/** The JSON body of a response decision (scripts answer probes this way in the sandbox tests). */
export function jsonBody(decision: RequestDecision): unknown {
  return JSON.parse(assertRespond(decision).body.toString('utf8'))
}

function describeDecision(decision: RequestDecision): string {
  if (decision.kind === 'respond') return `respond ${decision.status} ${decision.body.toString('utf8').slice(0, 200)}`
  return JSON.stringify(decision, (_key, value: unknown) => (value instanceof Map ? [...value] : value))
}

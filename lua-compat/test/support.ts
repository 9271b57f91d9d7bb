/** Shared test helpers for lua-compat: a fake RequestView (plain data, as the proxy will provide), a recording
 *  logger, a runtime factory closed by t.after, and shortcuts to run a script and read what it answered. */

import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { createLuaRuntime, type LuaRuntime, type LuaRuntimeOptions, type RequestView, type ScriptOutcome } from '../index.js'

export interface LogLine {
  readonly level: 'error' | 'warn' | 'info' | 'debug'
  readonly fields: Record<string, unknown>
  readonly msg: string
}

export function recordingLog(): { lines: LogLine[]; log: LuaRuntimeOptions['log'] } {
  const lines: LogLine[] = []
  const at = (level: LogLine['level']) => (fields: Record<string, unknown>, msg: string): void => { lines.push({ level, fields, msg }) }
  return { lines, log: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } }
}

export function fakeView(overrides: Partial<RequestView> = {}): RequestView {
  return {
    method: 'GET',
    target: '/path/to?a=1&b=two',
    host: 'example.com',
    httpVersion: '1.1',
    rawHeaders: ['Host', 'example.com', 'User-Agent', 'test-agent', 'X-Multi', 'one', 'X-Multi', 'two',
      'Cookie', 'sid=abc; theme=dark'],
    remoteAddr: '10.0.0.9',
    remotePort: 40001,
    serverAddr: '127.0.0.1',
    serverPort: 8080,
    requestId: 'req-0001',
    startTimeMs: 1_700_000_000_123,
    readBody: () => Promise.resolve(Buffer.from('body-bytes')),
    ...overrides,
  }
}

export interface TestRuntime {
  readonly runtime: LuaRuntime
  readonly logs: LogLine[]
}

export async function newRuntime(t: TestContext, overrides: Partial<LuaRuntimeOptions> = {}): Promise<TestRuntime> {
  const { lines, log } = recordingLog()
  const runtime = await createLuaRuntime({
    // Wall-clock budget: generous, so a loaded machine does not fail tests that are not about it (those set their own).
    timeoutMs: 1000,
    asyncTimeoutMs: 2000,
    regexCacheSize: 64,
    sharedDicts: { cache: 4 },
    workerId: 2,
    workerCount: 4,
    productVersion: '1.1.0',
    log,
    readConfig: () => undefined,
    ...overrides,
  })
  t.after(() => runtime.close())
  return { runtime, logs: lines }
}

/** Compiles `source` as script.example.com (failing the test on a compile error) and runs it for `view`. */
export async function run(runtime: LuaRuntime, source: string, view: RequestView = fakeView()): Promise<ScriptOutcome> {
  const compiled = runtime.compile('script.example.com', source)
  if (!compiled.ok) assert.fail(`compile failed: ${compiled.error}`)
  return await runtime.runRequestScript(compiled.chunk, view)
}

/** Runs a script that answers with ngx.say/print and returns the body text. */
export async function said(runtime: LuaRuntime, source: string, view?: RequestView): Promise<string> {
  const outcome = await run(runtime, source, view)
  if (outcome.kind !== 'respond') assert.fail(`expected a response, got ${JSON.stringify(outcome)}`)
  return outcome.body.toString('latin1')
}

export function assertContinue(outcome: ScriptOutcome): Extract<ScriptOutcome, { kind: 'continue' }> {
  if (outcome.kind !== 'continue') assert.fail(`expected continue, got ${JSON.stringify(outcome)}`)
  return outcome
}

export function assertRespond(outcome: ScriptOutcome): Extract<ScriptOutcome, { kind: 'respond' }> {
  if (outcome.kind !== 'respond') assert.fail(`expected a response, got ${JSON.stringify(outcome)}`)
  return outcome
}

export function assertError(outcome: ScriptOutcome): Extract<ScriptOutcome, { kind: 'error' }> {
  if (outcome.kind !== 'error') assert.fail(`expected an error, got ${JSON.stringify(outcome)}`)
  return outcome
}

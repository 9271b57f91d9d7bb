/** The generated-error table of proxy.md §6, declared once in src/proxy/errors.ts. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { GENERATED_ERRORS } from '../../src/proxy/index.js'

const SPEC_TABLE: readonly [number, number, string][] = [
  [50200001, 502, 'no upstream for host'], [50200002, 502, 'no servers available'], [50200003, 502, 'upstream connect failed'],
  [50200004, 502, 'invalid upstream response'], [50400001, 504, 'upstream timeout'], [40000001, 400, 'bad request'],
  [40800001, 408, 'request timeout'], [41300001, 413, 'request body too large'], [43100001, 431, 'request header too large'],
  [50000001, 500, 'script error'], [50000002, 500, 'script timeout'], [50000000, 500, 'internal error'],
]

test('every §6 code is declared with its status, message and Slardar-style JSON body', () => {
  assert.deepEqual(GENERATED_ERRORS.map((e) => [e.code, e.status, e.msg]), SPEC_TABLE)
  for (const error of GENERATED_ERRORS) {
    assert.equal(error.body.toString(), `{"code":${error.code},"msg":"${error.msg}"}`)
    assert.equal(error.bodyLengthText, String(error.body.length))
    assert.equal(error.status, Number(String(error.code).slice(0, 3)))
  }
})

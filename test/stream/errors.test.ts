import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { ListenFailedError, STREAM_ERROR_CODES } from '../../src/stream/errors.js'

const instances = [new ListenFailedError(1, '127.0.0.1:3131', 'address already in use')]

function codeFromClassName(name: string): string {
  return `STREAM_${name.replace(/Error$/, '').replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`
}

test('every error code matches its class name and carries the STREAM_ prefix', () => {
  for (const err of instances) assert.equal(err.code, codeFromClassName(err.constructor.name))
})

test('every error code is listed once in STREAM_ERROR_CODES and in the module header', () => {
  const source = readFileSync(new URL('../../../src/stream/errors.ts', import.meta.url), 'utf8')
  assert.deepEqual(Object.keys(STREAM_ERROR_CODES).sort(), instances.map((e) => e.code).sort())
  for (const code of Object.keys(STREAM_ERROR_CODES)) assert.ok(source.includes(`| \`${code}\``), `${code} not documented`)
})

test('a listen failure names the option entry, the address and what to do', () => {
  assert.equal(instances[0]!.message,
    'stream.listen[1]: cannot listen on 127.0.0.1:3131: address already in use; free the port or change stream.listen')
})

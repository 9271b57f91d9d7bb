import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import {
  NoUsablePeerError, ResolveFailedError, UnresolvedHostError, UPSTREAM_ERROR_CODES,
} from '../../src/checkups/errors.js'

const instances = [
  new NoUsablePeerError('api', 2),
  new UnresolvedHostError('backup.internal', 'ENOTFOUND'),
  new ResolveFailedError('backup.internal', 'EAI_AGAIN', ['10.0.0.1']),
]

function codeFromClassName(name: string): string {
  return `UPSTREAM_${name.replace(/Error$/, '').replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`
}

test('every error code matches its class name and carries the UPSTREAM_ prefix', () => {
  for (const err of instances) assert.equal(err.code, codeFromClassName(err.constructor.name))
})

test('every error code is listed once in UPSTREAM_ERROR_CODES and in the module header', () => {
  const source = readFileSync(new URL('../../../src/checkups/errors.ts', import.meta.url), 'utf8')
  assert.deepEqual(Object.keys(UPSTREAM_ERROR_CODES).sort(), instances.map((e) => e.code).sort())
  for (const code of Object.keys(UPSTREAM_ERROR_CODES)) assert.ok(source.includes(`| \`${code}\``), `${code} not documented`)
})

test('messages say what failed, where, and what to do', () => {
  assert.equal(instances[0]!.message,
    'upstream "api": no usable peer after 2 attempt(s); see /status for each server\'s last heartbeat')
  assert.equal(instances[1]!.message, 'could not resolve backup.internal: ENOTFOUND')
  assert.equal(instances[2]!.message,
    'could not re-resolve backup.internal: EAI_AGAIN; keeping 10.0.0.1 until a resolution succeeds')
})

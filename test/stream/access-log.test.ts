/** The formatting helpers of the stream access-log line (proxy.md §8 conventions); the line itself is checked end to
 *  end in connection.test.ts. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientAddress, isoTime, secondsText, secondsValue } from '../../src/stream/access-log.js'

test('isoTime gives the same text as Date.toISOString, across second boundaries and for every millisecond width', () => {
  const base = Date.parse('2025-03-01T09:30:05.000Z')
  for (const offset of [0, 7, 42, 999, 1000, 1001, 1099, 60_000, 3_600_123, -1]) {
    assert.equal(isoTime(base + offset), new Date(base + offset).toISOString())
  }
})

test('clientAddress unwraps IPv4-mapped IPv6, keeps real IPv6, and shows "-" for an unknown address', () => {
  assert.equal(clientAddress('::ffff:10.0.0.7'), '10.0.0.7')
  assert.equal(clientAddress('127.0.0.1'), '127.0.0.1')
  assert.equal(clientAddress('::1'), '::1')
  assert.equal(clientAddress('::ffff:abcd'), '::ffff:abcd')
  assert.equal(clientAddress(undefined), '-')
})

test('seconds keep millisecond precision, as text for lists and as a number for connection_time', () => {
  assert.equal(secondsText(3.4), '0.003')
  assert.equal(secondsText(1234.5), '1.235')
  assert.equal(secondsValue(1234.4), 1.234)
  assert.equal(secondsValue(0.2), 0)
})

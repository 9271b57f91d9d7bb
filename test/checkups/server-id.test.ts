import assert from 'node:assert/strict'
import { test } from 'node:test'
import { canonicalHost, serverId } from '../../src/checkups/server-id.js'

test('IPv4 literals are kept as written and are not hostnames', () => {
  assert.deepEqual(canonicalHost('10.0.0.1'), { host: '10.0.0.1', isHostname: false })
})

test('IPv6 literals become canonical text, with or without brackets', () => {
  assert.deepEqual(canonicalHost('FD00:0:0::7'), { host: 'fd00::7', isHostname: false })
  assert.deepEqual(canonicalHost('[fd00::7]'), { host: 'fd00::7', isHostname: false })
  assert.deepEqual(canonicalHost('0:0:0:0:0:0:0:1'), { host: '::1', isHostname: false })
})

test('hostnames are lower-cased RFC 1123 names', () => {
  assert.deepEqual(canonicalHost('Backup.Internal'), { host: 'backup.internal', isHostname: true })
  assert.deepEqual(canonicalHost('localhost'), { host: 'localhost', isHostname: true })
  assert.deepEqual(canonicalHost('a-1.example.com'), { host: 'a-1.example.com', isHostname: true })
})

test('anything else is neither an IP address nor a hostname', () => {
  for (const raw of ['', 'x y', '10.0.0.1:80', '10.0.0.256', '-a.example', 'a_b.example', 'a..b', '[10.0.0.1]',
    'fe80::1%eth0', 'a.', `${'a'.repeat(64)}.com`, `${'a.'.repeat(127)}com`]) {
    assert.equal(canonicalHost(raw), null, `accepted ${JSON.stringify(raw)}`)
  }
})

test('ids are host:port with IPv6 in brackets', () => {
  assert.equal(serverId('10.0.0.1', 80), '10.0.0.1:80')
  assert.equal(serverId('fd00::7', 80), '[fd00::7]:80')
  assert.equal(serverId('backup.internal', 8080), 'backup.internal:8080')
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseUpstreamJson } from '../../src/checkups/parse.js'
import { UPSTREAM_DEFAULTS } from '../../src/checkups/model.js'

const KEY = 'http_upstreams/api'

function messageOf(value: unknown, stream = false): string {
  const result = parseUpstreamJson(KEY, value, UPSTREAM_DEFAULTS, { stream })
  assert.equal(result.ok, false, 'expected the value to be rejected')
  return result.ok ? '' : result.message
}

function parsed(value: unknown, stream = false) {
  const result = parseUpstreamJson(KEY, value, UPSTREAM_DEFAULTS, { stream })
  assert.ok(result.ok, result.ok ? '' : result.message)
  return result
}

// §8 case 27: each value yields exactly this message.
test('case 27: a string port is reported with its servers path', () => {
  assert.equal(messageOf('{"servers":[{"host":"10.0.0.1","port":80},{"host":"10.0.0.2","port":"abc"}]}'),
    'http_upstreams/api: servers[1].port must be an integer 1..65535')
})

test('case 27: a missing host and an unknown mode are both reported, in document order', () => {
  assert.equal(messageOf('{"cluster":[{"servers":[{"port":80}]}],"mode":"least_conn"}'),
    'http_upstreams/api: cluster[0].servers[0].host is required; mode must be one of rr, hash, url_hash, ip_hash, header_hash')
})

test('case 27: weight 0 and an unknown typ are both reported, in document order', () => {
  assert.equal(messageOf('{"servers":[{"host":"10.0.0.1","port":80,"weight":0}],"typ":"postgresql"}'),
    'http_upstreams/api: servers[0].weight must be an integer >= 1; typ must be one of general, tcp, http, redis, mysql')
})

test('case 27: servers and cluster together are rejected', () => {
  assert.equal(messageOf('{"servers":[],"cluster":[]}'), 'http_upstreams/api: use either servers or cluster, not both')
})

test('case 27: hostnames differing only in case are duplicates across levels', () => {
  assert.equal(messageOf('{"cluster":[{"servers":[{"host":"a.internal","port":1}]},{"servers":[{"host":"A.internal","port":1}]}]}'),
    'http_upstreams/api: cluster[1].servers[0] duplicates cluster[0].servers[0] (a.internal:1)')
})

test('case 28 (unit part): a host with a space is not an IP address or a hostname', () => {
  const result = parseUpstreamJson('http_upstreams/bad', '{"servers":[{"host":"x y","port":80}]}')
  assert.equal(result.ok, false)
  assert.equal(result.ok ? '' : result.message, 'http_upstreams/bad: servers[0].host must be an IP address or a hostname')
})

test('the errors list holds each problem without the key, in the order of the message', () => {
  const result = parseUpstreamJson(KEY, { servers: [{ host: '', port: 0 }], timeout: 0 })
  assert.equal(result.ok, false)
  if (result.ok) return
  assert.deepEqual(result.errors, [
    'servers[0].host must be an IP address or a hostname',
    'servers[0].port must be an integer 1..65535',
    'timeout must be a number > 0',
  ])
  assert.equal(result.message, `${KEY}: ${result.errors.join('; ')}`)
})

test('values that are not objects are rejected with one message', () => {
  for (const value of ['1', '"x"', 'null', '[]', 1, null, [], 'true']) {
    assert.equal(messageOf(value), 'http_upstreams/api: value must be an object', `for ${JSON.stringify(value)}`)
  }
})

test('a value with neither servers nor cluster is rejected', () => {
  assert.equal(messageOf({ mode: 'rr' }), 'http_upstreams/api: servers or cluster is required')
})

test('every §1.4 problem has its documented wording', () => {
  const cases: [unknown, string][] = [
    [{ cluster: {} }, 'cluster must be an array of levels'],
    [{ cluster: [{ servers: [] }, { servers: 3 }] }, 'cluster[1].servers must be an array'],
    [{ cluster: [{ servers: [] }, 7] }, 'cluster[1].servers must be an array'],
    [{ servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }, { host: '10.0.0.1:80', port: 80 }] },
      'servers[2].host must be an IP address or a hostname'],
    [{ servers: [{ host: '10.0.0.1' }] }, 'servers[0].port is required'],
    [{ cluster: [{ servers: [{ host: 'a', port: 1 }, { host: 'b', port: 65536 }] }] },
      'cluster[0].servers[1].port must be an integer 1..65535'],
    [{ servers: [{ host: 'a', port: 1, weight: 1.5 }] }, 'servers[0].weight must be an integer >= 1'],
    [{ servers: [{ host: 'a', port: 1, max_fails: -1 }] }, 'servers[0].max_fails must be an integer >= 0'],
    [{ servers: [{ host: 'a', port: 1, fail_timeout: 0 }] }, 'servers[0].fail_timeout must be a number > 0'],
    [{ servers: [{ host: 'a', port: 1, down: 'yes' }] }, 'servers[0].down must be a boolean'],
    [{ servers: [], timeout: -1 }, 'timeout must be a number > 0'],
    [{ servers: [], try_timeout: -0.5 }, 'try_timeout must be a number >= 0'],
    [{ servers: [], protected: 'true' }, 'protected must be a boolean'],
    [{ servers: [], enable: 1 }, 'enable must be a boolean'],
    [{ servers: [], try: 0 }, 'try must be an integer >= 1'],
    [{ servers: [], sensibility: 0 }, 'sensibility must be an integer >= 1'],
    [{ servers: [], rise: 2.5 }, 'rise must be an integer >= 1'],
    [{ servers: [], keepalive: -1 }, 'keepalive must be an integer >= 0'],
    [{ servers: [], read_timeout: 0 }, 'read_timeout must be a number > 0'],
    [{ servers: [], mode: 'random' }, 'mode must be one of rr, hash, url_hash, ip_hash, header_hash'],
    [{ servers: [], typ: 'udp' }, 'typ must be one of general, tcp, http, redis, mysql'],
    [{ servers: [], hash_header: 'X Bad' }, 'hash_header must be a header name'],
    [{ servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }], cluster: undefined },
      'use either servers or cluster, not both'],
    [{ servers: [], http_opts: { query: 'GET / HTTP/1.0\r\n\r\n', path: '/x' } }, 'http_opts: use either query or path/method/headers'],
    [{ servers: [], http_opts: { path: '/x', statuses: { 200: true }, expect: ['2xx'] } }, 'http_opts: use either statuses or expect'],
    [{ servers: [], http_opts: 'GET /' }, 'http_opts must be an object'],
    [{ servers: [], http_opts: { path: 'health' } }, 'http_opts.path must be a path starting with /'],
    [{ servers: [], http_opts: { query: '' } }, 'http_opts.query must be a non-empty string'],
    [{ servers: [], http_opts: { path: '/', expect: ['2xx', 600] } },
      'http_opts.expect[1] must be a status code 100..599 or a class "1xx".."5xx"'],
    [{ servers: [], http_opts: { path: '/', statuses: { '20x': true } } }, 'http_opts.statuses.20x must be a status code 100..599'],
    [{ servers: [], http_opts: { path: '/', headers: { 'X-A': 'a\r\nb' } } },
      'http_opts.headers.X-A must be a string without line breaks'],
  ]
  for (const [value, expected] of cases) {
    const result = parseUpstreamJson(KEY, value)
    assert.equal(result.ok, false, `expected rejection of ${JSON.stringify(value)}`)
    if (!result.ok) assert.equal(result.message, `${KEY}: ${expected}`, `for ${JSON.stringify(value)}`)
  }
})

test('a duplicate in the servers form names both servers paths and the id', () => {
  assert.equal(messageOf({ servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }, { host: '10.0.0.2', port: 80 }] }),
    'http_upstreams/api: servers[2] duplicates servers[1] (10.0.0.2:80)')
})

test('IPv6 spellings of one address are duplicates', () => {
  assert.equal(messageOf({ servers: [{ host: 'fd00::7', port: 80 }, { host: '[FD00:0::7]', port: 80 }] }),
    'http_upstreams/api: servers[1] duplicates servers[0] ([fd00::7]:80)')
})

test('a stream upstream refuses uri-based hash modes with its own message', () => {
  for (const mode of ['hash', 'url_hash', 'header_hash', 'least_conn']) {
    assert.equal(messageOf({ servers: [], mode }, true), 'http_upstreams/api: mode must be one of rr, ip_hash for a stream upstream')
  }
  assert.equal(parsed({ servers: [], mode: 'ip_hash' }, true).upstream.mode, 'ip_hash')
})

test('defaults come from the defaults argument and config.md', () => {
  const { upstream } = parsed({ servers: [{ host: '10.0.0.1', port: 80 }] })
  assert.deepEqual({ ...upstream, cluster: undefined }, {
    stream: false, enable: true, typ: 'general', timeout: 5, http_opts: null, sensibility: 1, rise: 1, protected: true,
    mode: 'rr', hash_header: 'X-Hash-Key', try: 2, try_timeout: 5, keepalive: 64, connect_timeout: 3,
    send_timeout: 60, read_timeout: 60, cluster: undefined,
  })
  assert.deepEqual(upstream.cluster, [{ servers: [
    { id: '10.0.0.1:80', host: '10.0.0.1', port: 80, weight: 1, max_fails: 0, fail_timeout: 10, down: false },
  ] }])
  const custom = parseUpstreamJson(KEY, { servers: [{ host: 'a', port: 1 }] }, {
    ...UPSTREAM_DEFAULTS, heartbeatEnable: false, maxFails: 3, tries: 4, tryTimeoutSec: 9,
  })
  assert.ok(custom.ok)
  if (!custom.ok) return
  assert.equal(custom.upstream.enable, false)
  assert.equal(custom.upstream.try, 4)
  assert.equal(custom.upstream.try_timeout, 9)
  assert.equal(custom.upstream.cluster[0]!.servers[0]!.max_fails, 3)
})

test('a stream upstream defaults to stream.tries and an unlimited try_timeout', () => {
  const { upstream } = parsed({ servers: [] }, true)
  assert.equal(upstream.stream, true)
  assert.equal(upstream.try, 3)
  assert.equal(upstream.try_timeout, 0)
})

test('mode "" and "wrr" are accepted as rr', () => {
  assert.equal(parsed({ servers: [], mode: '' }).upstream.mode, 'rr')
  assert.equal(parsed({ servers: [], mode: 'wrr' }).upstream.mode, 'rr')
})

test('the servers form becomes one level and an empty cluster has no levels', () => {
  assert.deepEqual(parsed({ servers: [] }).upstream.cluster, [{ servers: [] }])
  assert.deepEqual(parsed({ cluster: [] }).upstream.cluster, [])
  assert.deepEqual(parsed({ cluster: [{ servers: [] }, { servers: [] }] }).upstream.cluster, [{ servers: [] }, { servers: [] }])
})

test('hosts are normalised into ids: lower-cased names, canonical IPs, bracketed IPv6', () => {
  const { upstream } = parsed({ servers: [
    { host: 'Backup.Internal', port: 8080 }, { host: '[FD00:0:0::7]', port: 80 }, { host: '2001:db8::1', port: 443 },
  ] })
  assert.deepEqual(upstream.cluster[0]!.servers.map((s) => [s.id, s.host]), [
    ['backup.internal:8080', 'backup.internal'], ['[fd00::7]:80', 'fd00::7'], ['[2001:db8::1]:443', '2001:db8::1'],
  ])
})

test('JSON5 text is accepted', () => {
  const { upstream } = parsed("{servers: [{host: '10.0.0.1', port: 80,},], // comment\n try: 3}")
  assert.equal(upstream.try, 3)
})

test('unparseable text and invalid UTF-8 are reported as such', () => {
  assert.match(messageOf('{"servers": ['), /^http_upstreams\/api: value is not valid JSON: /)
  assert.equal(messageOf(new Uint8Array([0x7b, 0xff, 0x7d])), 'http_upstreams/api: value is not valid UTF-8')
  assert.equal(parsed(new TextEncoder().encode('{"servers":[]}')).upstream.cluster.length, 1)
})

test('unknown fields are ignored with one warning each, naming key and path', () => {
  const result = parsed({ servers: [{ host: 'a', port: 1, wieght: 2 }], color: 'red', cluster_extra: 1 })
  assert.deepEqual(result.warnings, [
    'http_upstreams/api: servers[0].wieght is not a known field and is ignored',
    'http_upstreams/api: color is not a known field and is ignored',
    'http_upstreams/api: cluster_extra is not a known field and is ignored',
  ])
  const levels = parsed({ cluster: [{ servers: [], name: 'x' }], http_opts: { path: '/', timeout: 1 } })
  assert.deepEqual(levels.warnings, [
    'http_upstreams/api: cluster[0].name is not a known field and is ignored',
    'http_upstreams/api: http_opts.timeout is not a known field and is ignored',
  ])
})

test('typ redis and mysql are accepted with a warning that they are probed as TCP', () => {
  const result = parsed({ servers: [], typ: 'redis' })
  assert.equal(result.upstream.typ, 'redis')
  assert.deepEqual(result.warnings, ['http_upstreams/api: typ redis is probed as a TCP connect check (redis checks are not supported)'])
})

test('http_opts are normalised: method GET by default, expect classes lower-cased', () => {
  const { upstream } = parsed({ servers: [], typ: 'http', http_opts: { path: '/health', expect: ['2XX', 404] } })
  assert.deepEqual(upstream.http_opts, {
    query: null, path: '/health', method: 'GET', headers: {}, statuses: null, expect: ['2xx', 404],
  })
})

test('the definition is frozen all the way down', () => {
  const { upstream } = parsed({ servers: [{ host: 'a', port: 1 }], http_opts: { path: '/', headers: { A: 'b' } } })
  assert.ok(Object.isFrozen(upstream))
  assert.ok(Object.isFrozen(upstream.cluster[0]!.servers[0]))
  assert.ok(Object.isFrozen(upstream.http_opts!.headers))
})

test('numbers must be finite: JSON5 Infinity and NaN are rejected', () => {
  assert.equal(messageOf('{servers: [], timeout: Infinity, try_timeout: NaN}'),
    'http_upstreams/api: timeout must be a number > 0; try_timeout must be a number >= 0')
})

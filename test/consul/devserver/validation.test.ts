/** consul.md §25 D20–D28, plus the §17 path rules that have no row of their own: validation and error answers. */

import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, test } from 'node:test'
import { quietWindow, waitFor } from '../../support/wait-for.js'
import { entries, startServer } from './conformance.js'

describe('D. validation and errors', { concurrency: true }, () => {
  test('D20: GET, PUT and DELETE without a key are 400 Missing key name; a client watch on it ends without retrying', async (t) => {
    const { http, dev } = await startServer(t)
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const answer = await http(method, '/v1/kv/')
      assert.equal(answer.status, 400, method)
      assert.equal(answer.text, 'Missing key name', method)
    }
    const errors: Error[] = []
    const watch = dev.consul.watch({ method: dev.consul.kv.get, options: {} })
    watch.on('error', (err: Error) => errors.push(err))
    await waitFor(() => !watch.isRunning(), { withinMs: 2000, what: 'the watch to end' })
    await quietWindow(300)
    assert.equal(errors.length, 1, 'one error, no retry')
    assert.match(errors[0]?.message ?? '', /Missing key name/)
  })

  test('D21: a value one byte over kv_max_value_size is 413 (client: payload too large); exactly the limit is stored', async (t) => {
    const { http, dev } = await startServer(t)
    const over = await http('PUT', '/v1/kv/big', { body: Buffer.alloc(524_289, 0x61) })
    assert.equal(over.status, 413)
    assert.ok(over.text.startsWith('Request body(524289 bytes) too large, max size: 524288 bytes.'), over.text)
    await assert.rejects(dev.consul.kv.set('big', 'a'.repeat(524_289)), { message: 'payload too large' })
    assert.equal((await http('PUT', '/v1/kv/big', { body: Buffer.alloc(524_288, 0x61) })).json(), true)
  })

  test('D22: a bad index or wait is 400 Invalid index / Invalid wait time, wait checked even without index', async (t) => {
    const { http } = await startServer(t)
    for (const query of ['index=abc', 'index=-1']) {
      const answer = await http('GET', `/v1/kv/test?${query}`)
      assert.equal(answer.status, 400, query)
      assert.equal(answer.text, 'Invalid index', query)
    }
    for (const query of ['wait=10', 'index=5&wait=xyz']) {
      const answer = await http('GET', `/v1/kv/test?${query}`)
      assert.equal(answer.status, 400, query)
      assert.equal(answer.text, 'Invalid wait time', query)
    }
  })

  test('D23: stale with consistent is 400, another dc 500, our dc 200, a namespace 400', async (t) => {
    const { http } = await startServer(t)
    await http('PUT', '/v1/kv/test', { body: 'v' })
    const both = await http('GET', '/v1/kv/test?stale&consistent')
    assert.equal(both.status, 400)
    assert.equal(both.text, 'Cannot specify ?stale with ?consistent, conflicting semantics.')
    const other = await http('GET', '/v1/kv/test?dc=nope')
    assert.equal(other.status, 500)
    assert.equal(other.text, 'No path to datacenter')
    assert.equal((await http('GET', '/v1/kv/test?dc=dc1')).status, 200)
    const ns = await http('GET', '/v1/kv/test?ns=foo')
    assert.equal(ns.status, 400)
    assert.equal(ns.text, 'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature')
  })

  test('D24: PATCH is 405 with Allow and Consul text; OPTIONS is 200 with the same Allow and no body', async (t) => {
    const { http } = await startServer(t)
    const patch = await http('PATCH', '/v1/kv/test')
    assert.equal(patch.status, 405)
    assert.equal(patch.headers['allow'], 'OPTIONS,GET,PUT,DELETE')
    assert.equal(patch.text, 'method PATCH not allowed')
    const options = await http('OPTIONS', '/v1/kv/test')
    assert.equal(options.status, 200)
    assert.equal(options.headers['allow'], 'OPTIONS,GET,PUT,DELETE')
    assert.equal(options.body.length, 0)
  })

  test('D25: %2F in the path is a slash in the key, readable unencoded and listed under its folder', async (t) => {
    const { http, dev } = await startServer(t)
    const key = 'config/slardar/http_upstreams/node-dev.example.com'
    assert.equal((await http('PUT', `/v1/kv/${encodeURIComponent(key)}`, { body: '{}' })).json(), true)
    assert.equal(entries(await http('GET', `/v1/kv/${key}`))[0]?.Key, key)
    assert.deepEqual((await http('GET', '/v1/kv/config/slardar/http_upstreams/?keys')).json(), [key])
    const viaClient = (await dev.consul.kv.get(key)) as { Key: string } | undefined
    assert.equal(viaClient?.Key, key)
    assert.deepEqual(await dev.consul.kv.keys('config/slardar/http_upstreams/'), [key])
  })

  test('D26: %2B and %25 decode to + and %; a decoded control character is a bare 400', async (t) => {
    const { http } = await startServer(t)
    await http('PUT', '/v1/kv/a%2Bb%25c', { body: 'v' })
    assert.equal(entries(await http('GET', '/v1/kv/a%2Bb%25c'))[0]?.Key, 'a+b%c')
    const control = await http('GET', '/v1/kv/a%0Ab')
    assert.equal(control.status, 400)
    assert.equal(control.body.length, 0)
    assert.equal(control.headers['content-type'], undefined)
  })

  test('D27: traversal and surrounding whitespace are 400 unless disable_kv_key_validation', async (t) => {
    const strict = await startServer(t)
    for (const path of ['/v1/kv/a%2F..%2Fb', '/v1/kv/%20x']) {
      const answer = await strict.http('PUT', path, { body: 'v' })
      assert.equal(answer.status, 400, path)
      assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8')
      assert.ok(answer.text.length > 0)
    }
    const lax = await startServer(t, { disable_kv_key_validation: true })
    for (const path of ['/v1/kv/a%2F..%2Fb', '/v1/kv/%20x']) {
      assert.equal((await lax.http('PUT', path, { body: 'v' })).json(), true, path)
    }
  })

  test('D28: strict_keys rejects a leading slash and an empty segment with a 400 naming the rule', async (t) => {
    const { http } = await startServer(t, { strict_keys: true })
    for (const path of ['/v1/kv/%2Flead', '/v1/kv/a%2F%2Fb']) {
      const answer = await http('PUT', path, { body: 'v' })
      assert.equal(answer.status, 400, path)
      assert.match(answer.text, /strict_keys forbids/)
    }
    assert.equal((await http('GET', '/v1/kv/folder/?recurse')).status, 404, 'a listing prefix may end in a slash')
  })
})

describe('§17 path and parameter rules', { concurrency: true }, () => {
  test('a literal // or /./ in the raw path is a 301 to the cleaned path, query kept', async (t) => {
    const { http } = await startServer(t)
    const doubled = await http('GET', '/v1/kv/a//b?raw')
    assert.equal(doubled.status, 301)
    assert.equal(doubled.headers['location'], '/v1/kv/a/b?raw')
    const dotted = await http('PUT', '/v1/kv/a/./b', { body: 'v' })
    assert.equal(dotted.status, 301)
    assert.equal(dotted.headers['location'], '/v1/kv/a/b')
  })

  test('a malformed percent escape is a 400 and the connection closes', async (t) => {
    const { http } = await startServer(t)
    const answer = await http('GET', '/v1/kv/a%zz')
    assert.equal(answer.status, 400)
    assert.equal(answer.headers['connection'], 'close')
  })

  test('an unknown /v1 path is 404 Invalid URL path', async (t) => {
    const { http } = await startServer(t)
    const answer = await http('GET', '/v1/nothing/here')
    assert.equal(answer.status, 404)
    assert.equal(answer.text, 'Invalid URL path: not a recognized HTTP API endpoint')
  })

  test('a namespace or partition header is 400 with Consul CE text', async (t) => {
    const { http } = await startServer(t)
    const ns = await http('GET', '/v1/kv/x', { headers: { 'X-Consul-Namespace': 'team' } })
    assert.equal(ns.text, 'Invalid header: "X-Consul-Namespace" - Namespaces are a Consul Enterprise feature')
    const partition = await http('GET', '/v1/kv/x?partition=p')
    assert.equal(partition.text, 'Invalid query parameter: "partition" - Partitions are a Consul Enterprise feature')
  })

  test('out-of-range cas is a 500 with Go range text, and ?pretty indents with four spaces', async (t) => {
    const { http } = await startServer(t)
    const range = await http('PUT', '/v1/kv/x?cas=18446744073709551616', { body: 'v' })
    assert.equal(range.status, 500)
    assert.equal(range.text, 'strconv.ParseUint: parsing "18446744073709551616": value out of range')
    await http('PUT', '/v1/kv/x', { body: 'v' })
    const pretty = await http('GET', '/v1/kv/x?pretty')
    assert.ok(pretty.text.startsWith('[\n    {\n        "LockIndex": 0,'), pretty.text)
    assert.ok(pretty.text.endsWith(']\n'))
  })

  test('a chunked value over the limit is 413 too', async (t) => {
    const { dev } = await startServer(t, { kv_max_value_size: 10 })
    const response = await fetch(`${dev.url}/v1/kv/chunked`, {
      method: 'PUT',
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('0123456789abc'))
          controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    assert.equal(response.status, 413)
    assert.match(await response.text(), /^Request body too large, max size: 10 bytes\./)
  })
})

/** Sends raw bytes and resolves once the server has answered or closed the socket (at most `withinMs`). */
function sendRaw(port: number, bytes: string | Buffer, withinMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    let received = ''
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes))
    const timer = setTimeout(() => socket.destroy(), withinMs)
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(received)
    })
  })
}

test('hostile input gets an HTTP answer or a closed socket, never a crash or a logged server error', async (t) => {
  const logged: string[] = []
  const { http, dev } = await startServer(t, {
    session_ttl_min_ms: 1000,
    logger: { info: () => {}, warn: (_o, m) => void logged.push(`warn ${m}`), error: (_o, m) => void logged.push(`error ${m}`) },
  })
  const request = (head: string, body = ''): string =>
    `${head} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  const answers = await Promise.all([
    sendRaw(dev.port, Buffer.from([0x16, 0x03, 0x01, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a])),
    sendRaw(dev.port, 'GET /v1/kv/a\x01b HTTP/1.1\r\n\r\n'),
    sendRaw(dev.port, `GET /v1/kv/x HTTP/1.1\r\nX-Big: ${'a'.repeat(2 << 20)}\r\n\r\n`),
    sendRaw(dev.port, 'PUT /v1/kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort', 200),
    sendRaw(dev.port, request('PUT /v1/txn', '[{"KV":{"Verb":"cas","Key":"a","Index":18446744073709551616}}]')),
    sendRaw(dev.port, request('PUT /v1/txn', '[null,{"KV":null},[1]]')),
    sendRaw(dev.port, request('PUT /v1/session/create', '{"LockDelay":1e300,"TTL":5}')),
    sendRaw(dev.port, request('PUT /v1/session/create', '{"__proto__":{"TTL":"1s"},"NodeChecks":["nope"]}')),
    sendRaw(dev.port, request('PUT /v1/agent/service/register', '{"Name":"w","Port":1.5,"Check":{"TTL":"-1s"}}')),
    sendRaw(dev.port, request('GET /v1/kv/%C3%28')),
    sendRaw(dev.port, request('GET /v1/session/info/not-a-uuid?index=1&wait=1ms')),
    sendRaw(dev.port, request('DELETE /v1/kv/?recurse&token=x&dc=&ns=')),
  ])
  for (const answer of answers.slice(4)) assert.match(answer, /^HTTP\/1\.1 [1-5]\d\d /, answer.slice(0, 80))
  assert.match(answers[2] ?? '', /^HTTP\/1\.1 431 /)
  assert.equal((await http('GET', '/v1/status/leader')).status, 200)
  await waitFor(() => dev.server.stats().waiters === 0, { withinMs: 2000, what: 'no parked query left behind' })
  assert.deepEqual(logged, [])
})

/** Routing by Host (proxy.md §2 step 2 and 4) and the generated 502s of §6, through a real proxy and backends. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { absoluteFormAuthority, isChunkedLast, isValidHostValue, originFormOf, routingHostOf } from '../../src/proxy/routing.js'
import { refusingPort } from '../support/backends.js'
import { send, startEchoBackend, startProxy, upstreamOn } from './harness.js'

test('requests are routed by Host after lower-casing and stripping the port and one trailing dot', async (t) => {
  const api = await startEchoBackend(t)
  const web = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.example.com': upstreamOn([api.port]), 'web.test': upstreamOn([web.port]) } })
  for (const host of ['api.example.com', 'API.Example.COM', 'api.example.com:8080', 'api.example.com.', 'Api.Example.Com.:80']) {
    const reply = await send(port, { headers: { Host: host } })
    assert.equal(reply.text, `echo:${api.port}`, `Host: ${host}`)
  }
  assert.equal((await send(port, { headers: { Host: 'web.test' } })).text, `echo:${web.port}`)
  assert.equal(api.seen.length, 5)
})

test('an absolute-form request target routes by its host and reaches the server in origin form', async (t) => {
  const api = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([api.port]) } })
  const reply = await send(port, { path: 'http://API.test:9000/a/b?c=1', headers: { Host: 'other.test' } })
  assert.equal(reply.status, 200)
  assert.equal(api.seen[0]!.url, '/a/b?c=1')
})

test('an unknown host gets 502 code 50200001 in the JSON error format, without contacting any server', async (t) => {
  const api = await startEchoBackend(t)
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([api.port]) } })
  const reply = await send(port, { headers: { Host: 'nowhere.test', 'X-Request-Id': 'req-42' } })
  assert.equal(reply.status, 502)
  assert.equal(reply.headers['x-error-code'], '50200001')
  assert.equal(reply.headers['content-type'], 'application/json')
  assert.equal(reply.headers['x-request-id'], 'req-42')
  assert.match(String(reply.headers.server), /^slardar\/\d+\.\d+$/)
  assert.equal(reply.text, '{"code":50200001,"msg":"no upstream for host"}')
  assert.equal(reply.headers['content-length'], String(reply.body.length))
  assert.equal(api.seen.length, 0)
})

test('HEAD gets the generated error headers and no body', async (t) => {
  const { port } = await startProxy(t)
  const reply = await send(port, { method: 'HEAD', headers: { Host: 'nowhere.test' } })
  assert.equal(reply.status, 502)
  assert.equal(reply.headers['x-error-code'], '50200001')
  assert.equal(reply.body.length, 0)
})

test('proxy.default_upstream serves hosts that match no upstream', async (t) => {
  const fallback = await startEchoBackend(t)
  const { port } = await startProxy(t, { proxy: { default_upstream: 'fallback' }, upstreams: { fallback: upstreamOn([fallback.port]) } })
  const reply = await send(port, { headers: { Host: 'anything.test' } })
  assert.equal(reply.text, `echo:${fallback.port}`)
})

test('an upstream whose servers are all down gets 502 code 50200002', async (t) => {
  const closed = await refusingPort()
  const { port } = await startProxy(t, { upstreams: { 'api.test': upstreamOn([closed], { servers: [{ host: '127.0.0.1', port: closed, down: true }] }) } })
  const reply = await send(port, { headers: { Host: 'api.test' } })
  assert.equal(reply.status, 502)
  assert.equal(reply.text, '{"code":50200002,"msg":"no servers available"}')
})

test('an upstream added at runtime routes the next request, and a deleted one stops routing', async (t) => {
  const api = await startEchoBackend(t)
  const harness = await startProxy(t)
  assert.equal((await send(harness.port, { headers: { Host: 'late.test' } })).status, 502)
  harness.setUpstream('late.test', upstreamOn([api.port]))
  assert.equal((await send(harness.port, { headers: { Host: 'late.test' } })).text, `echo:${api.port}`)
  harness.deleteUpstream('late.test')
  assert.equal((await send(harness.port, { headers: { Host: 'late.test' } })).status, 502)
})

test('routing host rules: IPv6 literals keep their brackets, one trailing dot goes, absolute-form wins over Host', () => {
  assert.equal(routingHostOf('[::1]:8080'), '[::1]')
  assert.equal(routingHostOf('[FD00::7]'), '[fd00::7]')
  assert.equal(routingHostOf('Example.COM..'), 'example.com.')
  assert.equal(routingHostOf(''), '')
  assert.equal(absoluteFormAuthority('http://user@Host.test:81/p?q'), 'Host.test:81')
  assert.equal(absoluteFormAuthority('/p'), null)
  assert.equal(originFormOf('http://h.test'), '/')
  assert.equal(originFormOf('http://h.test?x=1'), '/?x=1')
  assert.equal(originFormOf('*'), '*')
  assert.equal(isChunkedLast('gzip, chunked'), true)
  assert.equal(isChunkedLast('chunked, gzip'), false)
  assert.equal(isValidHostValue('[::1]:80'), true)
  assert.equal(isValidHostValue('a..b'), false)
})

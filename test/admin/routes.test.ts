import assert from 'node:assert/strict'
import { test } from 'node:test'
import { jsonReply } from '../../src/admin/replies.js'
import { handlerFor, Router } from '../../src/admin/routes.js'

const ok = (): ReturnType<typeof jsonReply> => jsonReply(200, 'ok')

test('exact routes win over prefixes, and /lua/ is /lua', () => {
  const router = new Router().add('/lua', { GET: ok, PUT: ok }).add('/lua/', { GET: ok, POST: ok, PUT: ok, DELETE: ok })
  assert.deepEqual(router.match('/lua/')?.allowed, ['GET', 'HEAD', 'PUT'])
  assert.equal(router.match('/lua/')?.param, null)
  assert.equal(router.match('/lua/script.a')?.param, 'script.a')
  assert.equal(router.match('/lua/a/b')?.param, 'a/b')
  assert.equal(router.match('/luax'), null)
})

test('HEAD is allowed and served wherever GET is; other methods need their own handler', () => {
  const match = new Router().add('/status', { GET: ok }).match('/status')
  assert.ok(match !== null)
  assert.equal(handlerFor(match, 'HEAD'), ok)
  assert.equal(handlerFor(match, 'POST'), null)
  assert.equal(handlerFor(match, 'OPTIONS'), null)
  assert.deepEqual(match.allowed, ['GET', 'HEAD'])
})

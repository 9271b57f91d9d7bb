/** The pure helpers behind ngx.var.uri, set_uri targets (uri.ts) and the node:crypto codecs (codecs.ts). */

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeBase64, encodeBase64, md5Bin } from '../codecs.js'
import { escapeUriPath, normalizeUriPath, splitTarget } from '../uri.js'

test('normalizeUriPath decodes, merges slashes and resolves dot segments like nginx', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['/a/b', '/a/b'], ['/a//b///c', '/a/b/c'], ['/a/./b/', '/a/b/'], ['/a/b/../c', '/a/c'], ['/a/..', '/'],
    ['/../x', '/x'], ['/%41%2f%2E%2E/b', '/b'], ['/a%20b', '/a b'], ['/bad%zz', '/bad%zz'], ['*', '*'],
  ]
  for (const [input, expected] of cases) assert.equal(normalizeUriPath(input), expected, input)
})

test('escapeUriPath escapes what nginx escapes in a rewritten URI', () => {
  assert.equal(escapeUriPath('/a b#c%d?e/\u00e9\x7f'), '/a%20b%23c%25d%3Fe/%E9%7F')
  assert.equal(escapeUriPath('/plain/path-1.html'), '/plain/path-1.html')
})

test('splitTarget separates the query at the first ?, null when there is none', () => {
  assert.deepEqual(splitTarget('/a?b=1?c'), { path: '/a', query: 'b=1?c' })
  assert.deepEqual(splitTarget('/a?'), { path: '/a', query: '' })
  assert.deepEqual(splitTarget('/a'), { path: '/a', query: null })
})

test('binary strings survive the codecs byte for byte', () => {
  const digest = md5Bin('abc')
  assert.equal(digest.length, 16)
  assert.equal(decodeBase64(encodeBase64(digest, false)), digest)
  assert.equal(encodeBase64('\xff\xfe', true), '//4')
  assert.equal(decodeBase64('//4'), '\xff\xfe')
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import pLimit from 'p-limit'
import type { ResolveFailedError } from '../../src/checkups/errors.js'
import type { AddressChange } from '../../src/checkups/model.js'
import { HostResolver, systemLookup } from '../../src/checkups/resolver.js'
import { UpstreamTable } from '../../src/checkups/table.js'
import { waitFor } from '../support/wait-for.js'
import { install } from './fixtures.js'

/** A resolver whose answers the test sets per hostname: an address list, or an error code. */
function harness(answers: Map<string, readonly string[] | string>, intervalSec = 30) {
  const table = new UpstreamTable()
  const broadcast: AddressChange[][] = []
  const warnings: ResolveFailedError[] = []
  const resolver = new HostResolver({
    table, intervalSec, limit: pLimit(4),
    lookup: async (host) => {
      const answer = answers.get(host)
      if (answer === undefined || typeof answer === 'string') {
        throw Object.assign(new Error(`lookup ${host} failed`), { code: answer ?? 'ENOTFOUND' })
      }
      return answer
    },
    onChanges: (changes) => broadcast.push([...changes]),
    onWarning: (w) => warnings.push(w),
  })
  return { table, resolver, broadcast, warnings }
}

test('a resolved hostname points its servers at the first address and is broadcast', async () => {
  const answers = new Map([['b.internal', ['10.9.0.2', '10.9.0.1']]])
  const { table, resolver, broadcast } = harness(answers)
  install(table, 'api', { servers: [{ host: 'b.internal', port: 80 }] })
  const changes = await resolver.resolve(table.hostnames())
  assert.deepEqual(changes, [{ host: 'b.internal', addresses: ['10.9.0.2', '10.9.0.1'], error: null }])
  assert.deepEqual(broadcast, [changes])
  assert.equal(table.get('api')!.peers[0]!.address, '10.9.0.2')
})

test('a hostname that never resolved carries could not resolve <host>: <code>', async () => {
  const { table, resolver } = harness(new Map([['b.internal', 'ENOTFOUND']]))
  install(table, 'api', { servers: [{ host: 'b.internal', port: 80 }] })
  await resolver.resolve(['b.internal'])
  const peer = table.get('api')!.peers[0]!
  assert.deepEqual([peer.address, peer.resolveError], [null, 'could not resolve b.internal: ENOTFOUND'])
})

test('a failed re-resolution keeps the old list and warns once per failure', async () => {
  const answers = new Map<string, readonly string[] | string>([['b.internal', ['10.9.0.1']]])
  const { table, resolver, broadcast, warnings } = harness(answers)
  install(table, 'api', { servers: [{ host: 'b.internal', port: 80 }] })
  await resolver.resolve(['b.internal'])
  answers.set('b.internal', 'EAI_AGAIN')
  assert.deepEqual(await resolver.resolve(['b.internal']), [])
  assert.equal(table.get('api')!.peers[0]!.address, '10.9.0.1')
  assert.equal(broadcast.length, 1)
  assert.equal(warnings.length, 1)
  assert.equal(warnings[0]!.code, 'UPSTREAM_RESOLVE_FAILED')
  assert.equal(warnings[0]!.message, 'could not re-resolve b.internal: EAI_AGAIN; keeping 10.9.0.1 until a resolution succeeds')
})

test('an unchanged answer broadcasts nothing; a changed one re-points servers without touching health', async () => {
  const answers = new Map<string, readonly string[] | string>([['b.internal', ['10.9.0.1']]])
  const { table, resolver, broadcast } = harness(answers)
  const up = install(table, 'api', { servers: [{ host: 'b.internal', port: 80 }] })
  await resolver.resolve(['b.internal'])
  up.peers[0]!.health.status = 'err'
  assert.deepEqual(await resolver.resolve(['b.internal']), [])
  answers.set('b.internal', ['10.9.0.5'])
  await resolver.resolve(['b.internal'])
  assert.deepEqual([up.peers[0]!.address, up.peers[0]!.health.status, broadcast.length], ['10.9.0.5', 'err', 2])
})

test('the periodic refresh re-resolves every hostname in use', async (t) => {
  const answers = new Map<string, readonly string[] | string>([['b.internal', ['10.9.0.1']]])
  const { table, resolver } = harness(answers, 0.05)
  t.after(() => resolver.stop())
  const up = install(table, 'api', { servers: [{ host: 'b.internal', port: 80 }] })
  resolver.start()
  await waitFor(() => up.peers[0]!.address === '10.9.0.1', { withinMs: 2000, what: 'the first periodic resolution' })
  answers.set('b.internal', ['10.9.0.9'])
  await waitFor(() => up.peers[0]!.address === '10.9.0.9', { withinMs: 2000, what: 'the changed address to be picked up' })
})

test('the system lookup uses the OS resolver, so /etc/hosts names resolve', async () => {
  assert.ok((await systemLookup('localhost')).length > 0)
})

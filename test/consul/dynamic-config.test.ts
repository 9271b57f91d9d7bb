import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DynamicConfigOverlay, type FetchRawKey } from '../../src/consul/dynamic-config.js'

class ManualClock {
  ms = 1_000_000
  nowMs(): number {
    return this.ms
  }
}

/** A fetch whose answers the test hands out one by one. */
class ControlledFetch {
  readonly pending: { key: string; answer: (raw: Buffer | undefined) => void; fail: (err: Error) => void }[] = []
  readonly fetch: FetchRawKey = (key) =>
    new Promise((resolve, reject) => {
      this.pending.push({ key, answer: resolve, fail: reject })
    })

  /** p-limit starts a queued call on a later tick; let it. */
  async started(): Promise<number> {
    await new Promise((resolve) => setImmediate(resolve))
    return this.pending.length
  }

  /** Answers the oldest refresh in flight with `raw`, or fails it with an Error. */
  async settleNext(outcome: Buffer | undefined | Error): Promise<void> {
    await this.started()
    const request = this.pending.shift()
    assert.ok(request, 'a refresh was expected')
    if (outcome instanceof Error) request.fail(outcome)
    else request.answer(outcome)
  }
}

function overlay(options: { isCacheEnabled?: boolean } = {}): {
  overlay: DynamicConfigOverlay
  clock: ManualClock
  fetches: ControlledFetch
  problems: string[]
} {
  const clock = new ManualClock()
  const fetches = new ControlledFetch()
  const problems: string[] = []
  const instance = new DynamicConfigOverlay({
    fetch: fetches.fetch,
    positiveTtlSec: 10,
    negativeTtlSec: 5,
    isCacheEnabled: options.isCacheEnabled ?? true,
    clock,
    onRefreshProblem: (key, message) => problems.push(`${key}: ${message}`),
  })
  return { overlay: instance, clock, fetches, problems }
}

test('a read answers at once with the last known value and refreshes the key once in the background', async () => {
  const { overlay: o, fetches } = overlay()
  assert.deepEqual(o.read('myargs', { limit: 1 }), { limit: 1 })
  assert.deepEqual(o.read('myargs', { limit: 1 }), { limit: 1 })
  assert.equal(await fetches.started(), 1, 'one request in flight per key')
  await fetches.settleNext(Buffer.from('{limit: 2}'))
  await o.settled()
  assert.deepEqual(o.read('myargs', { limit: 1 }), { limit: 2 })
})

test('a found value is kept for the positive TTL, then refreshed', async () => {
  const { overlay: o, fetches, clock } = overlay()
  o.read('myargs', undefined)
  await fetches.settleNext(Buffer.from('"a"'))
  await o.settled()
  clock.ms += 9_999
  assert.equal(o.read('myargs', undefined), 'a')
  assert.equal(await fetches.started(), 0)
  clock.ms += 1
  assert.equal(o.read('myargs', undefined), 'a')
  assert.equal(await fetches.started(), 1)
})

test('a 404 is kept as absent for the negative TTL', async () => {
  const { overlay: o, fetches, clock } = overlay()
  assert.equal(o.read('gone', 'stale'), 'stale')
  await fetches.settleNext(undefined)
  await o.settled()
  assert.equal(o.read('gone', 'stale'), undefined)
  clock.ms += 4_999
  o.read('gone', 'stale')
  assert.equal(await fetches.started(), 0)
  clock.ms += 1
  o.read('gone', 'stale')
  assert.equal(await fetches.started(), 1)
})

test('an invalid value or a failed read keeps the previous value for the negative TTL and is reported', async () => {
  const { overlay: o, fetches, clock, problems } = overlay()
  o.read('myargs', { limit: 1 })
  await fetches.settleNext(Buffer.from('not json'))
  await o.settled()
  assert.deepEqual(o.read('myargs', { limit: 1 }), { limit: 1 })
  assert.equal(await fetches.started(), 0)
  clock.ms += 5_000
  o.read('myargs', { limit: 1 })
  await fetches.settleNext(new Error('127.0.0.1:8500: ECONNREFUSED'))
  await o.settled()
  assert.deepEqual(o.read('myargs', { limit: 1 }), { limit: 1 })
  assert.equal(problems.length, 2)
  assert.match(problems[0] ?? '', /^myargs: value is not valid JSON/)
  assert.equal(problems[1], 'myargs: 127.0.0.1:8500: ECONNREFUSED')
})

test('at most four refreshes run at once over all keys', async () => {
  const { overlay: o, fetches } = overlay()
  for (let i = 0; i < 6; i++) o.read(`k${i}`, undefined)
  assert.equal(await fetches.started(), 4)
  await fetches.settleNext(undefined)
  assert.equal(await fetches.started(), 4, 'the fifth starts when one finishes')
})

test('with the cache off every read refreshes, still one request per key at a time', async () => {
  const { overlay: o, fetches } = overlay({ isCacheEnabled: false })
  o.read('myargs', 1)
  o.read('myargs', 1)
  assert.equal(await fetches.started(), 1)
  await fetches.settleNext(Buffer.from('2'))
  await o.settled()
  assert.equal(o.read('myargs', 1), 2)
  assert.equal(await fetches.started(), 1, 'the read after the answer refreshes again')
})

test('clear() drops the overlay, and a refresh started before it does not come back', async () => {
  const { overlay: o, fetches } = overlay()
  o.read('a', 1)
  await fetches.settleNext(Buffer.from('2'))
  await o.settled()
  o.read('b', 1)
  assert.deepEqual(o.clear(), ['a'], 'clear() names the keys whose readers go back to live values')
  await fetches.settleNext(Buffer.from('3'))
  await o.settled()
  assert.equal(o.read('a', 'live'), 'live')
  assert.equal(o.read('b', 'live'), 'live')
})

test('each stored answer is announced with its value, and entries() lists what the overlay holds', async () => {
  const announced: [string, unknown][] = []
  const fetches = new ControlledFetch()
  const o = new DynamicConfigOverlay({
    fetch: fetches.fetch, positiveTtlSec: 10, negativeTtlSec: 5, isCacheEnabled: true, clock: new ManualClock(),
    onRefreshed: (key, value) => announced.push([key, value]),
  })
  o.read('found', 1)
  o.read('gone', 1)
  await fetches.settleNext(Buffer.from('{"x": 2}'))
  await fetches.settleNext(undefined)
  await o.settled()
  assert.deepEqual(announced, [['found', { x: 2 }], ['gone', undefined]])
  assert.deepEqual([...o.entries()], [['found', { x: 2 }], ['gone', undefined]])
})

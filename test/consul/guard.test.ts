import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatLocalTime } from '../../src/checkups/index.js'
import { DeletionGuard, type GuardDiff } from '../../src/consul/guard.js'

class ManualClock {
  constructor(public ms: number) {}
  nowMs(): number {
    return this.ms
  }
}

const T0 = Date.parse('2024-05-01T10:00:00Z')

function guard(options: { enabled?: boolean; maxRemovalPct?: number; holdSeconds?: number } = {}): { guard: DeletionGuard; clock: ManualClock } {
  const clock = new ManualClock(T0)
  return {
    guard: new DeletionGuard({ enabled: options.enabled ?? true, maxRemovalPct: options.maxRemovalPct ?? 50, holdSeconds: options.holdSeconds ?? 30, clock }),
    clock,
  }
}

const keys = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `http_upstreams/u${from + i}`)

function diff(removed: readonly string[], options: Partial<GuardDiff> = {}): GuardDiff {
  return { liveUpstreamCount: 10, removed, emptied: [], index: 100n, ...options }
}

test('removing 7 of 10 upstreams is held, with the reason, counts and times /status shows', () => {
  const { guard: g } = guard()
  const review = g.review(diff(keys(7)))
  assert.deepEqual([...review.held].sort(), keys(7).sort())
  assert.equal(review.newGroups.length, 1)
  assert.deepEqual(g.status(), {
    enabled: true,
    held: [{
      keys: keys(7),
      reason: 'removes 7 of 10 upstreams (70% > 50%)',
      count: 7,
      of: 10,
      pct: 70,
      since: formatLocalTime(T0),
      release_at: formatLocalTime(T0 + 30_000),
    }],
  })
  assert.equal(g.holdsTotal, 1)
  assert.equal(g.heldKeyCount, 7)
  assert.equal(g.nextReleaseAtMs, T0 + 30_000)
})

test('exactly the threshold passes and strictly more is held: 1 of 2 applies, 2 of 2 is held', () => {
  const { guard: g } = guard()
  assert.equal(g.review(diff(keys(1), { liveUpstreamCount: 2 })).held.size, 0)
  assert.equal(g.review(diff(keys(2), { liveUpstreamCount: 2 })).held.size, 2)
})

test('an upstream whose new value has no server is held on its own, whatever the share', () => {
  const { guard: g } = guard()
  const review = g.review(diff([], { emptied: ['http_upstreams/api'], liveUpstreamCount: 40 }))
  assert.deepEqual([...review.held], ['http_upstreams/api'])
  assert.equal(g.status().held[0]?.reason, 'removes every server of 1 upstream (http_upstreams/api)')
})

test('a held key that comes back leaves the hold and the rest stays held', () => {
  const { guard: g } = guard()
  g.review(diff(keys(7)))
  const review = g.review(diff(keys(6, 1)))
  assert.deepEqual(review.leftHold, ['http_upstreams/u0'])
  assert.deepEqual([...review.held].sort(), keys(6, 1).sort())
  assert.equal(review.newGroups.length, 0, 'keys already held are not counted again')
  assert.deepEqual(g.status().held[0]?.keys, keys(6, 1))
  const allBack = g.review(diff([]))
  assert.equal(allBack.held.size, 0)
  assert.deepEqual(g.status().held, [])
  assert.equal(g.nextReleaseAtMs, null)
})

test('a small removal next to a hold applies at once: held keys are not counted twice', () => {
  const { guard: g } = guard()
  g.review(diff(keys(7)))
  const review = g.review(diff([...keys(7), 'http_upstreams/u9']))
  assert.equal(review.held.has('http_upstreams/u9'), false)
  assert.equal(review.held.size, 7)
})

test('after hold_seconds the hold is released and the next review lets the removal through', () => {
  const { guard: g, clock } = guard({ holdSeconds: 2 })
  g.review(diff(keys(7)))
  clock.ms += 1999
  assert.deepEqual(g.releaseDue(), [])
  clock.ms += 1
  assert.deepEqual(g.releaseDue().sort(), keys(7).sort())
  assert.equal(g.heldKeyCount, 0)
  assert.equal(g.review(diff(keys(7))).held.size, 0, 'the released removal is not held again')
  assert.equal(g.review(diff(keys(7))).held.size, 7, 'a later mass removal is guarded again')
})

test('release() ends every hold at once and reports how many keys it let go', () => {
  const { guard: g } = guard()
  g.review(diff(keys(7)))
  g.review(diff(keys(7), { emptied: ['http_upstreams/u8'] }))
  assert.equal(g.release().length, 8)
  assert.deepEqual(g.release(), [])
  assert.equal(g.review(diff(keys(7), { emptied: ['http_upstreams/u8'] })).held.size, 0)
})

test('deletions the admin API wrote in the last 60 s are neither counted nor held', () => {
  const { guard: g } = guard()
  for (const key of keys(7)) g.recordAdminDeletion(key, 90n)
  assert.equal(g.review(diff(keys(7), { index: 95n })).held.size, 0)

  const other = guard()
  for (const key of keys(7)) other.guard.recordAdminDeletion(key, 90n)
  assert.equal(other.guard.review(diff(keys(7), { index: 80n })).held.size, 7, 'a listing older than the delete does not show it')

  const late = guard()
  for (const key of keys(7)) late.guard.recordAdminDeletion(key, 90n)
  late.clock.ms += 60_001
  assert.equal(late.guard.review(diff(keys(7), { index: 95n })).held.size, 7, 'the exemption lasts 60 s')
})

test('a disabled guard holds nothing', () => {
  const { guard: g } = guard({ enabled: false })
  assert.equal(g.review(diff(keys(10), { emptied: ['http_upstreams/x'] })).held.size, 0)
  assert.deepEqual(g.status(), { enabled: false, held: [] })
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseBenchOptions } from '../../bench/options.js'

test('by default the bench runs performance.md rounds: 3 of 10 s after 2 s warm-up, 64 connections, 1 thread', () => {
  const parsed = parseBenchOptions({}, [])
  assert.ok(parsed.ok)
  assert.deepEqual(parsed.options, {
    caseNames: [], rounds: 3, durationSec: 10, warmupSec: 2, connections: 64, threads: 1, readyTimeoutSec: 15, isQuick: false, keepTmp: false,
  })
})

test('BENCH_QUICK=1 is one round of 3 s, and explicit variables still win', () => {
  const quick = parseBenchOptions({ BENCH_QUICK: '1' }, [])
  assert.ok(quick.ok)
  assert.equal(quick.options.rounds, 1)
  assert.equal(quick.options.durationSec, 3)
  const tuned = parseBenchOptions({ BENCH_QUICK: '1', BENCH_ROUNDS: '2' }, [])
  assert.ok(tuned.ok)
  assert.equal(tuned.options.rounds, 2)
})

test('case names come from the arguments, else from BENCH_CASES', () => {
  const fromEnv = parseBenchOptions({ BENCH_CASES: 'proxy-small, retry' }, [])
  assert.ok(fromEnv.ok)
  assert.deepEqual(fromEnv.options.caseNames, ['proxy-small', 'retry'])
  const fromArgs = parseBenchOptions({ BENCH_CASES: 'retry' }, ['engines'])
  assert.ok(fromArgs.ok)
  assert.deepEqual(fromArgs.options.caseNames, ['engines'])
})

test('every bad setting is reported by its variable name', () => {
  const parsed = parseBenchOptions({ BENCH_ROUNDS: '0', BENCH_DURATION: 'ten' }, ['--fast'])
  assert.equal(parsed.ok, false)
  assert.deepEqual(parsed.ok ? [] : parsed.problems, [
    'unknown option --fast; pass case names, and settings as BENCH_* variables',
    'BENCH_ROUNDS: expected an integer 1..50, got "0"',
    'BENCH_DURATION: expected an integer 1..600, got "ten"',
  ])
})

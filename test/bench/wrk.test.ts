import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseWrkOutput } from '../../bench/wrk.js'

const REPORT = `Running 10s test @ http://127.0.0.1:36413/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  410.11us  12.34ms   89.00%
    Req/Sec    63.12k     2.34k   67.00k    70.00%
  Latency Distribution
     50%  950.00us
     75%    1.17ms
     90%    1.40ms
     99%    2.80ms
  628213 requests in 10.00s, 98.12MB read
  Socket errors: connect 1, read 12, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  62821.30
Transfer/sec:      9.81MB
`

test('a wrk --latency report gives rps, p50 and p99 in ms, the request count and every error', () => {
  const parsed = parseWrkOutput(REPORT)
  assert.ok(parsed.ok)
  assert.deepEqual(parsed.result, {
    requestsPerSec: 62821.3,
    latencyP50Ms: 0.95,
    latencyP99Ms: 2.8,
    requests: 628213,
    non2xx3xx: 5,
    socketErrors: 20,
  })
})

test('latencies in seconds convert to ms and a clean run has zero errors', () => {
  const text = REPORT.replace('2.80ms', '1.50s').replace(/  Socket errors.*\n/, '').replace(/  Non-2xx.*\n/, '')
  const parsed = parseWrkOutput(text)
  assert.ok(parsed.ok)
  assert.equal(parsed.result.latencyP99Ms, 1500)
  assert.equal(parsed.result.socketErrors, 0)
  assert.equal(parsed.result.non2xx3xx, 0)
})

test('a report without the latency distribution is an error that names --latency, never a zero', () => {
  const text = REPORT.replace(/  Latency Distribution[\s\S]*?99%.*\n/, '')
  const parsed = parseWrkOutput(text)
  assert.equal(parsed.ok, false)
  assert.match(parsed.ok ? '' : parsed.message, /--latency/)
})

test('wrk failing to connect at all is an error that quotes its output', () => {
  const parsed = parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused\n')
  assert.equal(parsed.ok, false)
  assert.match(parsed.ok ? '' : parsed.message, /unable to connect to 127\.0\.0\.1:1/)
})

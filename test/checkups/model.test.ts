import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildConfig } from '../../src/config/index.js'
import { streamUpstreamName, systemClock, UPSTREAM_DEFAULTS, upstreamDefaultsFrom } from '../../src/checkups/model.js'

test('the parser defaults are config.md defaults', () => {
  assert.deepEqual(UPSTREAM_DEFAULTS, {
    heartbeatEnable: true, maxFails: 0, tries: 2, tryTimeoutSec: 5, keepalive: 64,
    connectTimeoutSec: 3, sendTimeoutSec: 60, readTimeoutSec: 60, streamTries: 3,
  })
  assert.ok(Object.isFrozen(UPSTREAM_DEFAULTS))
})

test('the defaults of an empty config file are UPSTREAM_DEFAULTS', () => {
  assert.deepEqual(upstreamDefaultsFrom(buildConfig({}, 'test')), UPSTREAM_DEFAULTS)
})

test('the parser defaults follow the config options they come from', () => {
  const config = buildConfig({
    global: { default_heartbeat_enable: false, default_max_fails: 2 },
    proxy: { tries: 4, try_timeout: 1.5, keepalive: 8, connect_timeout: 1, send_timeout: 2, read_timeout: 3 },
    stream: { tries: 5 },
  }, 'test')
  assert.deepEqual(upstreamDefaultsFrom(config), {
    heartbeatEnable: false, maxFails: 2, tries: 4, tryTimeoutSec: 1.5, keepalive: 8,
    connectTimeoutSec: 1, sendTimeoutSec: 2, readTimeoutSec: 3, streamTries: 5,
  })
})

test('stream upstreams are named stream:<port>', () => {
  assert.equal(streamUpstreamName(3131), 'stream:3131')
})

test('the system clock reads wall-clock milliseconds, shared by every process', () => {
  const before = Date.now()
  const now = systemClock.nowMs()
  assert.ok(now >= before && now <= Date.now())
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildConfig, configToApply, diffConfig, listOptionPaths, RELOAD_CLASS } from '../../src/config/index.js'

const upstream = (port: number): unknown => ({ servers: [{ host: '127.0.0.1', port }] })

test('every option of the schema has a reload class, and the class table names no option the schema lacks', () => {
  const paths = listOptionPaths()
  assert.deepEqual(paths.filter((path) => !(path in RELOAD_CLASS)), [])
  assert.deepEqual(Object.keys(RELOAD_CLASS).filter((path) => !paths.includes(path)), [])
})

test('an unchanged config changes nothing', () => {
  const config = buildConfig({ proxy: { read_timeout: 5 }, upstreams: { a: upstream(1) } }, 'a')
  const again = buildConfig({ proxy: { read_timeout: 5 }, upstreams: { a: upstream(1) } }, 'b')
  assert.deepEqual(diffConfig(config, again), { inPlace: [], roll: false, rollFor: [], restartOnly: [] })
})

test('timeouts, headers, log options and the admin token apply in place', () => {
  const running = buildConfig({}, 'a')
  const next = buildConfig({
    proxy: { read_timeout: 1, xff: false, retry_body_limit: '1k' },
    log: { level: 'debug', access: 'off' },
    admin: { token: 'a-token-of-16-chars!' },
  }, 'b')
  const diff = diffConfig(running, next)
  assert.deepEqual([...diff.inPlace].sort(), ['admin.token', 'log.access', 'log.level', 'proxy.read_timeout', 'proxy.retry_body_limit', 'proxy.xff'])
  assert.equal(diff.roll, false)
  assert.deepEqual(diff.restartOnly, [])
})

test('static upstreams are named one by one when added, replaced or removed', () => {
  const running = buildConfig({ upstreams: { kept: upstream(1), changed: upstream(2), removed: upstream(3) } }, 'a')
  const next = buildConfig({ upstreams: { kept: upstream(1), changed: upstream(4), added: upstream(5) } }, 'b')
  assert.deepEqual(diffConfig(running, next).inPlace, ['upstreams.added', 'upstreams.changed', 'upstreams.removed'])
})

test('a listener or worker-count change rolls the workers when there are workers before and after', () => {
  const running = buildConfig({ workers: 1, proxy: { listen: ['127.0.0.1:8080'] } }, 'a')
  const diff = diffConfig(running, buildConfig({ workers: 2, stream: { listen: ['127.0.0.1:3131'] } }, 'b'))
  assert.equal(diff.roll, true)
  assert.deepEqual(diff.rollFor, ['stream.listen', 'workers'])
  assert.deepEqual(diff.restartOnly, [])
})

test('with workers: 0 a listener change cannot roll and is restart-only', () => {
  const running = buildConfig({ workers: 0 }, 'a')
  const diff = diffConfig(running, buildConfig({ workers: 0, proxy: { listen: ['127.0.0.1:9090'], tries: 3 } }, 'b'))
  assert.equal(diff.roll, false)
  assert.deepEqual(diff.restartOnly, ['proxy.listen'])
  assert.deepEqual(diff.inPlace, ['proxy.tries'])
})

test('going between one process and workers is restart-only', () => {
  assert.deepEqual(diffConfig(buildConfig({ workers: 0 }, 'a'), buildConfig({ workers: 2 }, 'b')).restartOnly, ['workers'])
  assert.deepEqual(diffConfig(buildConfig({ workers: 'auto' }, 'a'), buildConfig({ workers: 0 }, 'b')).restartOnly, ['workers'])
})

test('consul, admin listener and snapshot options are restart-only', () => {
  const running = buildConfig({}, 'a')
  const next = buildConfig({ consul: { address: '127.0.0.1:8501', config_key_prefix: 'other/' }, admin: { listen: '127.0.0.1:1996' }, snapshot: { path: '/tmp/x.json' } }, 'b')
  assert.deepEqual(diffConfig(running, next).restartOnly, ['consul.address', 'consul.config_key_prefix', 'admin.listen', 'snapshot.path'])
})

test('the config to apply keeps the running value of every restart-only option and takes the rest', () => {
  const running = buildConfig({ consul: { address: '127.0.0.1:8500' }, proxy: { read_timeout: 60 } }, 'a')
  const next = buildConfig({ consul: { address: '127.0.0.1:8501' }, proxy: { read_timeout: 2 } }, 'b')
  const applied = configToApply(running, next, diffConfig(running, next))
  assert.deepEqual(applied.consul.address, { host: '127.0.0.1', port: 8500 })
  assert.equal(applied.proxy.read_timeout, 2)
  assert.ok(Object.isFrozen(applied.consul))
  assert.deepEqual(diffConfig(running, applied).restartOnly, [])
})

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import JSON5 from 'json5'
import {
  buildConfig,
  ConfigInvalidError,
  describeConfig,
  listOptionPaths,
  parseConfigText,
} from '../../src/config/index.js'

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (err) {
    assert.equal((err as ConfigInvalidError).code, 'CONFIG_INVALID')
    return (err as ConfigInvalidError).problems
  }
  assert.fail('expected the config to be rejected')
}

test('an empty document yields every default of config.md', () => {
  const config = buildConfig({}, 'slardar.json5')
  assert.equal(config.global.checkup_timer_interval, 5)
  assert.equal(config.consul.wait, 300)
  assert.equal(config.consul.config_key_prefix, 'config/slardar/')
  assert.deepEqual(config.proxy.listen, [{ host: '127.0.0.1', port: 8080 }])
  assert.deepEqual(config.proxy.next_upstream, ['error', 'timeout', 'http_502'])
  assert.equal(config.proxy.client_max_body_size, 1024 ** 3)
  assert.equal(config.proxy.retry_body_limit, 65536)
  assert.equal(config.proxy.max_header_size, 16384)
  assert.deepEqual(config.admin.listen, { host: '127.0.0.1', port: 1995 })
  assert.equal(config.workers, 0)
  assert.equal(config.jobs.full_resync, '0 */10 * * * *')
  assert.equal(config.log.access, 'stdout')
})

test('the validated config is deeply frozen', () => {
  const config = buildConfig({}, 'slardar.json5')
  assert.ok(Object.isFrozen(config))
  assert.ok(Object.isFrozen(config.proxy))
  assert.ok(Object.isFrozen(config.proxy.listen))
})

test('three mistakes are all reported, each with its path', () => {
  const problems = problemsOf(() =>
    parseConfigText('{ proxy: { tris: 3, listen: ["127.0.0.1"] }, workers: -1 }', 'slardar.json5'),
  )
  assert.deepEqual(problems, [
    'proxy.tris: unknown option (did you mean proxy.tries?)',
    'proxy.listen[0]: expected "host:port" or a port number, got "127.0.0.1"',
    'workers: expected "auto" or an integer >= 0, got -1',
  ])
})

test('the error message counts the problems and lists one per line', () => {
  try {
    parseConfigText('{ workers: -1, log: { level: "loud" } }', 'my.json5')
    assert.fail('expected a rejection')
  } catch (err) {
    assert.equal(
      (err as Error).message,
      'my.json5: 2 problems\n  workers: expected "auto" or an integer >= 0, got -1\n' +
        '  log.level: expected one of trace, debug, info, warn, error, fatal, silent, got "loud"',
    )
  }
})

test('durations accept seconds and unit strings; sizes accept k and m suffixes', () => {
  const config = buildConfig(
    { consul: { wait: '1m30s', timeout: '500ms' }, proxy: { connect_timeout: 1.5, retry_body_limit: '1m', max_header_size: 8192 } },
    'slardar.json5',
  )
  assert.equal(config.consul.wait, 90)
  assert.equal(config.consul.timeout, 0.5)
  assert.equal(config.proxy.connect_timeout, 1.5)
  assert.equal(config.proxy.retry_body_limit, 1024 * 1024)
  assert.equal(config.proxy.max_header_size, 8192)
})

test('a watch wait above ten minutes and malformed durations and sizes are rejected', () => {
  const problems = problemsOf(() =>
    buildConfig({ consul: { wait: '11m' }, proxy: { read_timeout: '10 parsecs', client_max_body_size: '1t' } }, 'slardar.json5'),
  )
  assert.deepEqual(problems, [
    'consul.wait: must be at most "10m", got 660 s',
    'proxy.read_timeout: expected a duration (seconds, or a string such as "500ms", "5m"), got "10 parsecs"',
    'proxy.client_max_body_size: expected a size (bytes, or a string such as "64k", "1m"), got "1t"',
  ])
})

test('listen addresses accept host:port, bracketed IPv6 and bare ports', () => {
  const config = buildConfig({ proxy: { listen: ['0.0.0.0:80', '[::1]:8081', 9090] } }, 'slardar.json5')
  assert.deepEqual(config.proxy.listen, [
    { host: '0.0.0.0', port: 80 },
    { host: '::1', port: 8081 },
    { host: '127.0.0.1', port: 9090 },
  ])
})

test('a section given as a non-object is reported once, without cascading errors', () => {
  assert.deepEqual(problemsOf(() => buildConfig({ guard: true }, 'slardar.json5')), [
    'guard: expected a section (object), got true',
  ])
})

test('an admin token shorter than 16 characters is rejected without echoing it', () => {
  const problems = problemsOf(() => buildConfig({ admin: { token: 'short-secret' } }, 'slardar.json5'))
  assert.deepEqual(problems, ['admin.token: must be at least 16 characters long'])
})

test('CONSUL_HTTP_ADDR overrides the address and scheme, CONSUL_HTTP_TOKEN and SLARDAR_ADMIN_TOKEN the tokens', () => {
  const config = buildConfig(
    { consul: { servers: [{ host: '10.1.1.1', port: 8500 }], token: 'file-token' } },
    'slardar.json5',
    { CONSUL_HTTP_ADDR: 'https://127.0.0.1:8501', CONSUL_HTTP_TOKEN: 'env-token', SLARDAR_ADMIN_TOKEN: '0123456789abcdef0' },
  )
  assert.deepEqual(config.consul.address, { host: '127.0.0.1', port: 8501 })
  assert.deepEqual(config.consul.servers, [])
  assert.equal(config.consul.scheme, 'https')
  assert.equal(config.consul.token, 'env-token')
  assert.equal(config.admin.token, '0123456789abcdef0')
})

test('an invalid environment override names the variable', () => {
  const problems = problemsOf(() =>
    buildConfig({}, 'slardar.json5', { CONSUL_HTTP_ADDR: 'not an address', SLARDAR_ADMIN_TOKEN: 'short' }),
  )
  assert.deepEqual(problems, [
    'CONSUL_HTTP_ADDR: expected "host:port" or "http(s)://host:port", got "not an address"',
    'SLARDAR_ADMIN_TOKEN: must be at least 16 characters long',
  ])
})

test('command-line overrides of log level and workers go through the same validation', () => {
  const config = buildConfig({ workers: 4 }, 'slardar.json5', {}, { logLevel: 'debug', workers: 'auto' })
  assert.equal(config.log.level, 'debug')
  assert.equal(config.workers, 'auto')
  assert.deepEqual(problemsOf(() => buildConfig({}, 'x', {}, { workers: 'many' })), [
    'workers: expected "auto" or an integer >= 0, got "many"',
  ])
})

test('the described config masks secrets and keeps everything else', () => {
  const config = buildConfig({ consul: { token: 'abc' }, admin: { token: '0123456789abcdef' } }, 'slardar.json5')
  const shown = describeConfig(config) as { consul: { token: string; wait: number }; admin: { token: string } }
  assert.equal(shown.consul.token, '******')
  assert.equal(shown.admin.token, '******')
  assert.equal(shown.consul.wait, 300)
  assert.equal(JSON.stringify(shown).includes('abc'), false)
})

test('a key prefix without a trailing slash is rejected with a suggestion', () => {
  assert.deepEqual(problemsOf(() => buildConfig({ consul: { config_key_prefix: 'config/slardar' } }, 'slardar.json5')), [
    'consul.config_key_prefix: must end with "/", got "config/slardar" (did you mean "config/slardar/"?)',
  ])
})

test('an invalid cron expression for the full resync is rejected', () => {
  assert.deepEqual(problemsOf(() => buildConfig({ jobs: { full_resync: 'every tuesday' } }, 'slardar.json5')), [
    'jobs.full_resync: expected a cron expression such as "0 */10 * * * *" or null (off), got "every tuesday"',
  ])
})

test('a JSON5 syntax error names the file and the position', () => {
  assert.throws(() => parseConfigText('{ proxy: { tries: 2 ', 'broken.json5'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CONFIG_FILE_UNREADABLE')
    assert.match(err.message, /^broken\.json5: not valid JSON5: .*at 1:21/)
    return true
  })
})

test('examples/slardar.json5 is valid and lists every option of the schema with its default', async () => {
  const text = await readFile(new URL('../../../examples/slardar.json5', import.meta.url), 'utf8')
  const example = JSON5.parse(text) as Record<string, unknown>
  const defaults = buildConfig({}, 'defaults') as unknown as Record<string, unknown>
  const fromExample = parseConfigText(text, 'examples/slardar.json5') as unknown as Record<string, unknown>
  for (const path of listOptionPaths()) {
    const segments = path.split('.')
    const given = segments.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], example)
    assert.notEqual(given, undefined, `examples/slardar.json5 does not document ${path}`)
    const read = (root: Record<string, unknown>): unknown =>
      segments.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], root)
    assert.deepEqual(read(fromExample), read(defaults), `examples/slardar.json5 gives ${path} a value other than its default`)
  }
})

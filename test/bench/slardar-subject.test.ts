import assert from 'node:assert/strict'
import { dirname, join, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildSubjectConfig, loadSubjectTemplate } from '../../bench/slardar-subject.js'
import { parseStaticUpstreams } from '../../src/cluster/primary.js'
import { parseConfigText } from '../../src/config/index.js'

const TEMPLATE = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'bench/slardar.bench.json5')

const PLACEMENT = {
  proxyPort: 41000, adminPort: 41001, workers: 2, serverPorts: [42001, 42002, 42003], isHeartbeatEnabled: true,
  accessLogPath: '/tmp/bench/access.log', snapshotPath: '/tmp/bench/snapshot.json', consulAddress: null,
} as const

test("the subject's config passes Slardar's own validation, static upstream included", async () => {
  const config = buildSubjectConfig(await loadSubjectTemplate(TEMPLATE), PLACEMENT)
  const parsed = parseConfigText(JSON.stringify(config), 'bench subject')
  assert.deepEqual(parseStaticUpstreams(parsed).problems, [])
  assert.equal(parsed.workers, 2)
  assert.equal(parsed.consul.enable, false)
  assert.equal(parsed.proxy.default_upstream, 'bench')
  assert.equal(parsed.log.access, '/tmp/bench/access.log')
})

test('the case places the proxy, admin and servers on its ports and keeps heartbeats on unless it says otherwise', async () => {
  const template = await loadSubjectTemplate(TEMPLATE)
  const config = buildSubjectConfig(template, PLACEMENT) as Record<string, Record<string, unknown>>
  assert.deepEqual(config['proxy']?.['listen'], ['127.0.0.1:41000'])
  assert.equal(config['admin']?.['listen'], '127.0.0.1:41001')
  assert.deepEqual(config['upstreams']?.['bench'], {
    servers: [42001, 42002, 42003].map((port) => ({ host: '127.0.0.1', port })),
    enable: true,
  })
  const retry = buildSubjectConfig(template, { ...PLACEMENT, isHeartbeatEnabled: false }) as Record<string, Record<string, Record<string, unknown>>>
  assert.equal(retry['upstreams']?.['bench']?.['enable'], false)
})

test('a script case points the subject at its embedded Consul', async () => {
  const config = buildSubjectConfig(await loadSubjectTemplate(TEMPLATE), { ...PLACEMENT, consulAddress: '127.0.0.1:43000' })
  const parsed = parseConfigText(JSON.stringify(config), 'bench subject')
  assert.equal(parsed.consul.enable, true)
  assert.deepEqual(parsed.consul.address, { host: '127.0.0.1', port: 43000 })
})

test('a template without proxy.default_upstream is refused with the reason', () => {
  assert.throws(() => buildSubjectConfig({ proxy: {} }, PLACEMENT), /proxy\.default_upstream must name the bench upstream/)
})

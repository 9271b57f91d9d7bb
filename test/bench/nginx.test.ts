import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { renderAnchorConf, renderBackendConf } from '../../bench/nginx.js'

const ANCHOR = { listenPort: 41000, serverPorts: [42001, 42002, 42003], workers: 2, tries: 2, accessLogPath: '/tmp/a.log', isRoot: false }

test('the anchor proxies HTTP/1.1 to a keepalive-64 upstream of every server with the case worker count', () => {
  const conf = renderAnchorConf(ANCHOR)
  assert.match(conf, /^worker_processes 2;$/m)
  assert.match(conf, /upstream bench \{\n    server 127\.0\.0\.1:42001 max_fails=0;\n    server 127\.0\.0\.1:42002 max_fails=0;\n    server 127\.0\.0\.1:42003 max_fails=0;\n    keepalive 64;/)
  assert.match(conf, /proxy_http_version 1\.1;/)
  assert.match(conf, /proxy_set_header Connection "";/)
  assert.match(conf, /proxy_next_upstream_tries 2;/)
  assert.match(conf, /access_log \/tmp\/a\.log;/)
  assert.doesNotMatch(conf, /^user /m)
})

test('the backend listens on every port with logging off and serves the 12-byte body at /', () => {
  const conf = renderBackendConf({ ports: [42001, 42002], documentRoot: '/tmp/www', isRoot: true })
  assert.match(conf, /listen 127\.0\.0\.1:42001;\n    listen 127\.0\.0\.1:42002;/)
  assert.match(conf, /access_log off;/)
  assert.match(conf, /location = \/ \{ return 200 "hello world\\n"; \}/)
  assert.match(conf, /^user root;$/m)
})

/** nginx -t checks syntax and every path without serving; the test is skipped where nginx is not installed. */
function nginxPath(): string | null {
  for (const path of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx']) if (existsSync(path)) return path
  return null
}

async function checkWithNginx(t: TestContext, conf: string): Promise<void> {
  const nginx = nginxPath()
  if (nginx === null) return t.skip('nginx is not installed (make bench-tools installs it)')
  const prefix = await mkdtemp(join(tmpdir(), 'slardar-bench-nginx-'))
  t.after(() => rm(prefix, { recursive: true, force: true }))
  await mkdir(join(prefix, 'tmp'))
  await writeFile(join(prefix, 'nginx.conf'), conf)
  const result = spawnSync(nginx, ['-t', '-p', `${prefix}/`, '-c', join(prefix, 'nginx.conf'), '-e', 'stderr'], { encoding: 'utf8', timeout: 10_000 })
  assert.equal(result.status, 0, result.stderr)
}

test('nginx accepts both rendered configurations', async (t) => {
  const isRoot = process.getuid?.() === 0
  await checkWithNginx(t, renderAnchorConf({ ...ANCHOR, isRoot, accessLogPath: join(tmpdir(), 'slardar-bench-anchor-test.log') }))
  await checkWithNginx(t, renderBackendConf({ ports: [42001], documentRoot: tmpdir(), isRoot }))
})

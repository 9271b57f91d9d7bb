import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { PRODUCT_VERSION } from '../src/version.js'

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url))

interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'], ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1
      resolve({ code, stdout, stderr })
    })
  })
}

async function configFile(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slardar-cli-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'slardar.json5')
  await writeFile(path, text)
  return path
}

test('check-config on a file with three mistakes prints all three with paths and exits 1', async (t) => {
  const path = await configFile(t, '{ proxy: { tris: 3, listen: ["127.0.0.1"] }, workers: -1 }')
  const result = await runCli(['check-config', '-c', path])
  assert.equal(result.code, 1)
  assert.equal(
    result.stderr,
    `${path}: 3 problems\n` +
      '  proxy.tris: unknown option (did you mean proxy.tries?)\n' +
      '  proxy.listen[0]: expected "host:port" or a port number, got "127.0.0.1"\n' +
      '  workers: expected "auto" or an integer >= 0, got -1\n',
  )
  assert.equal(result.stdout, '')
})

test('check-config prints the effective config with defaults filled and secrets masked', async (t) => {
  const path = await configFile(t, '{ consul: { token: "file-secret-token" }, proxy: { tries: 3 } }')
  const result = await runCli(['check-config', '-c', path], { SLARDAR_ADMIN_TOKEN: 'env-admin-secret-0123' })
  assert.equal(result.code, 0, result.stderr)
  const shown = JSON.parse(result.stdout) as { consul: { token: string }; admin: { token: string }; proxy: { tries: number; read_timeout: number } }
  assert.equal(shown.proxy.tries, 3)
  assert.equal(shown.proxy.read_timeout, 60)
  assert.equal(shown.consul.token, '******')
  assert.equal(shown.admin.token, '******')
  assert.equal(result.stdout.includes('secret'), false)
})

test('check-config on a missing file exits 1 naming the file', async () => {
  const result = await runCli(['check-config', '-c', '/nonexistent/slardar.json5'])
  assert.equal(result.code, 1)
  assert.equal(result.stderr, '/nonexistent/slardar.json5: cannot read the config file (ENOENT)\n')
})

test('a --workers override that is not a count is a config error', async (t) => {
  const path = await configFile(t, '{}')
  const result = await runCli(['check-config', '-c', path, '--workers', 'lots'])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /workers: expected "auto" or an integer >= 0, got "lots"/)
})

test('version prints the package version', async () => {
  const result = await runCli(['version'])
  assert.equal(result.code, 0)
  assert.equal(result.stdout, `slardar ${PRODUCT_VERSION}\n`)
})

test('an unknown command or flag is a usage error with exit code 2', async () => {
  const unknownCommand = await runCli(['frobnicate'])
  assert.equal(unknownCommand.code, 2)
  assert.match(unknownCommand.stderr, /^slardar: unknown command "frobnicate"\nusage: slardar <command>/)
  const unknownFlag = await runCli(['check-config', '--nope'])
  assert.equal(unknownFlag.code, 2)
  assert.match(unknownFlag.stderr, /Unknown option '--nope'/)
})

test('check-config validates static upstreams with upstreams.<name> paths', async (t) => {
  const path = await configFile(t, '{ upstreams: { "api.example.com": { servers: [{ host: "10.0.0.1", port: 0 }], mode: "least_conn" } } }')
  const result = await runCli(['check-config', '-c', path])
  assert.equal(result.code, 1)
  assert.equal(
    result.stderr,
    `${path}: 1 problem\n  upstreams.api.example.com: servers[0].port must be an integer 1..65535; ` +
      'mode must be one of rr, hash, url_hash, ip_hash, header_hash\n',
  )
})

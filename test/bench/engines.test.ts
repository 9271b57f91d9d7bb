import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ENGINES, type Engine } from '../../bench/engines.js'
import { freePort } from '../../bench/processes.js'
import { refusingPort, startHttpBackend } from '../support/backends.js'
import { waitFor } from '../support/wait-for.js'

const ENGINES_JS = fileURLToPath(new URL('../../bench/engines.js', import.meta.url))

interface Answer {
  readonly status: number
  readonly body: string
}

function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')))
    req.on('error', reject)
    req.end()
  })
}

async function startEngine(t: TestContext, engine: Engine, backendPort: number): Promise<number> {
  const port = await freePort()
  const child = spawn(process.execPath, [ENGINES_JS, engine, String(port), String(backendPort)], { stdio: 'ignore' })
  t.after(() => {
    child.kill('SIGKILL')
  })
  return port
}

for (const engine of ENGINES) {
  test(`the ${engine} engine forwards a request to the backend and returns its status and body`, async (t) => {
    const backend = await startHttpBackend(t, { status: 201, body: 'from the backend' })
    const port = await startEngine(t, engine, backend.port)
    const answer = await waitFor(() => get(port, '/some/path?q=1').catch(() => null), { withinMs: 10_000, what: `${engine} to answer` })
    assert.deepEqual(answer, { status: 201, body: 'from the backend' })
    assert.equal(backend.requests, 1)
  })

  // tcp-relay speaks no HTTP: a refused backend just closes the client connection.
  if (engine === 'tcp-relay') continue
  test(`the ${engine} engine answers 502 when the backend refuses connections`, async (t) => {
    const port = await startEngine(t, engine, await refusingPort())
    const answer = await waitFor(() => get(port, '/').catch(() => null), { withinMs: 10_000, what: `${engine} to answer` })
    assert.equal(answer.status, 502)
  })
}

test('the engines program refuses an unknown engine with its usage', async () => {
  const child = spawn(process.execPath, [ENGINES_JS, 'nope', '1', '2'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  assert.equal(code, 2)
  assert.match(stderr, /usage: node dist\/bench\/engines\.js <http-proxy\|undici-pool\|http-agent\|tcp-relay\|lean-http\|[^>]*> <listenPort> <backendPort>/)
})

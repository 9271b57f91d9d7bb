/** The admin API fuzz generator (reliability.md "Bad input": generated bodies of random JSON, wrong types, huge
 *  numbers, deep nesting, non-JSON, empty), shared by test/admin/fuzz.test.ts and the scaled run in test/chaos/.
 *  Every case is a request the admin API must reject with a 4xx and a message; a seed replays a run exactly. */

import assert from 'node:assert/strict'
import type { AdminResponse, RequestOptions } from './admin-harness.js'

/** Cases in the base mix; a run of N cases multiplies every kind by N / BASE_CASE_COUNT. */
const BASE_CASE_COUNT = 313

/** mulberry32: a small seeded generator, so a failing case can be replayed from its seed and number. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export interface FuzzCase {
  readonly method: string
  readonly path: string
  readonly options: RequestOptions
}

const BAD_TOP_LEVEL: Readonly<Record<string, readonly unknown[]>> = {
  enable: ['yes', 1, null, []],
  protected: ['no', 0],
  typ: ['postgresql', 1, null],
  mode: ['least_conn', 2, null],
  timeout: [0, -1, '5', null],
  connect_timeout: [0, 'x'],
  read_timeout: [-3, []],
  try_timeout: [-1, 'x', null],
  sensibility: [0, 1.5, '2'],
  rise: [0, null],
  try: [0, -2, 'x'],
  keepalive: [-1, 0.5, 'x'],
  hash_header: ['bad header', 1, ''],
  http_opts: ['x', 1, { path: 'noslash' }, { query: '' }, { query: 'GET / HTTP/1.1\r\n\r\n', path: '/x' }, { method: 'G E T' }, { headers: { 'a b': 'c' } }],
}
const BAD_SERVER_FIELD: Readonly<Record<string, readonly unknown[]>> = {
  host: ['', 'x y', '10.0.0.1:80', 1, null, 'a..b'],
  port: [0, 65536, -1, 1.5, '80', null],
  weight: [0, -1, 1.5, '1'],
  max_fails: [-1, 1.5, 'x'],
  fail_timeout: [0, -2, 'x'],
  down: ['no', 0],
}
const BAD_STRUCTURES: readonly unknown[] = [
  1, 'x', null, [], true, [{ servers: [] }],
  { mode: 'rr' },
  { servers: [], cluster: [] },
  { servers: 'x' }, { servers: {} }, { servers: [1] }, { servers: [null] },
  { cluster: 'x' }, { cluster: [1] }, { cluster: [{ servers: 1 }] }, { cluster: [{}] },
  { servers: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.1', port: 80 }] },
  { cluster: [{ servers: [{ host: 'A.internal', port: 1 }] }, { servers: [{ host: 'a.internal', port: 1 }] }] },
  { servers: [{ port: 80 }] }, { servers: [{ host: '10.0.0.1' }] },
  { password: '******', servers: [] },
]

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T
}

function randomText(random: () => number, length: number, alphabet: string): string {
  let text = ''
  for (let i = 0; i < length; i += 1) text += alphabet[Math.floor(random() * alphabet.length)]
  return text
}

function validUpstream(random: () => number): Record<string, unknown> {
  const servers = [{ host: '10.0.0.1', port: 80, weight: 2 }, { host: 'backend.internal', port: 8080 }]
  return random() < 0.5 ? { mode: 'rr', servers } : { typ: 'general', cluster: [{ servers }, { servers: [{ host: '10.0.0.9', port: 81 }] }] }
}

/** A JSON-ish body that is always invalid as an upstream (one certain defect). */
function badUpstreamBody(random: () => number): string | Buffer {
  const kind = Math.floor(random() * 9)
  const base = validUpstream(random)
  switch (kind) {
    case 0:
    case 1: {
      const field = pick(random, Object.keys(BAD_TOP_LEVEL))
      return JSON.stringify({ ...base, [field]: pick(random, BAD_TOP_LEVEL[field] as unknown[]) })
    }
    case 2:
    case 3: {
      const field = pick(random, Object.keys(BAD_SERVER_FIELD))
      const bad = { host: '10.0.0.7', port: 7000, [field]: pick(random, BAD_SERVER_FIELD[field] as unknown[]) }
      return JSON.stringify(Object.hasOwn(base, 'servers') ? { ...base, servers: [bad] } : { ...base, cluster: [{ servers: [{ host: '10.0.0.2', port: 2 }] }, { servers: [bad] }] })
    }
    case 4:
      return JSON.stringify(pick(random, BAD_STRUCTURES))
    case 5: {
      const text = JSON.stringify(base)
      return text.slice(0, 1 + Math.floor(random() * (text.length - 1)))
    }
    case 6:
      return randomText(random, 1 + Math.floor(random() * 200), '{}[]:,"\'\\ abcxyz0123456789.-+eE\n\t/*nulltruefalse')
    case 7: {
      const text = Buffer.from(JSON.stringify(base))
      const at = 2 + Math.floor(random() * (text.length - 4))
      return Buffer.concat([text.subarray(0, at), Buffer.from([0xff, 0xfe, 0xc3]), text.subarray(at)])
    }
    default: {
      const depth = 33 + Math.floor(random() * 3000)
      return `{"servers":[],"extra":${'['.repeat(depth)}${']'.repeat(depth)}}`
    }
  }
}

function badScriptSource(random: () => number, runtime: 'lua' | 'js'): string {
  const prefix = randomText(random, Math.floor(random() * 120), 'abcdefghijklmnopqrstuvwxyz =(){}[]"\'.,;:+-*/\n\t0123456789')
  // Whatever the prefix left open, an unbalanced tail cannot parse in either language.
  return runtime === 'lua' ? `${prefix}\nfunction (` : `${prefix}\n)(`
}

/** Bad admin requests from `random`, at least `minimumCases` of them (default: the base mix of 313). Every kind of
 *  request grows by the same factor, so a larger run keeps the mix; the base mix is unchanged for a given seed. */
export function buildAdminFuzzCases(random: () => number, minimumCases = BASE_CASE_COUNT): FuzzCase[] {
  const factor = Math.max(1, minimumCases / BASE_CASE_COUNT)
  const n = (base: number): number => Math.ceil(base * factor)
  const cases: FuzzCase[] = []
  for (let i = 0; i < n(130); i += 1) cases.push({ method: pick(random, ['POST', 'PUT']), path: '/upstream/fz', options: { body: badUpstreamBody(random) } })
  for (let i = 0; i < n(50); i += 1) cases.push({ method: 'PUT', path: '/stream_upstream/3131', options: { body: badUpstreamBody(random) } })
  for (let i = 0; i < n(8); i += 1) {
    cases.push({ method: 'PUT', path: '/stream_upstream/3131', options: { body: JSON.stringify({ mode: pick(random, ['hash', 'url_hash', 'header_hash']), servers: [] }) } })
  }
  for (let i = 0; i < n(30); i += 1) cases.push({ method: 'POST', path: '/lua/modules.fz', options: { body: badScriptSource(random, 'lua') } })
  for (let i = 0; i < n(30); i += 1) cases.push({ method: 'POST', path: '/js/modules.fz', options: { body: badScriptSource(random, 'js') } })
  for (let i = 0; i < n(10); i += 1) {
    cases.push({ method: 'PUT', path: pick(random, ['/lua/version', '/js/version']), options: { body: random() < 0.5 ? ' \n '.repeat(1 + i) : 'v'.repeat(201 + i) } })
  }
  const valid = JSON.stringify({ servers: [{ host: '10.0.0.1', port: 80 }] })
  for (let i = 0; i < n(25); i += 1) {
    const name = randomText(random, 1 + Math.floor(random() * 12), 'ab/%!@$&*()+=,;: ~`^|<>') + randomText(random, 1, '/%!@$*')
    cases.push({ method: pick(random, ['POST', 'PUT', 'DELETE', 'GET']), path: `/upstream/${encodeURI(name).replace(/\?/g, '%3F')}`, options: { body: valid } })
  }
  for (let i = 0; i < n(10); i += 1) {
    const port = pick(random, ['0', '01', '65536', '99999', '-1', '1.5', 'abc', '3131x', ''])
    cases.push({ method: pick(random, ['PUT', 'DELETE', 'GET']), path: `/stream_upstream/${port}`, options: { body: valid } })
  }
  for (let i = 0; i < n(10); i += 1) {
    const name = pick(random, ['.staged', '.x', 'version', 'cjson', 'bit', 'table.new', 'script.UPPER', 'a%20b', 'a/b', '%00'])
    cases.push({ method: pick(random, ['POST', 'DELETE', 'GET']), path: `/lua/${name}`, options: { body: 'return 1' } })
  }
  for (let i = 0; i < n(10); i += 1) {
    cases.push({ method: 'PUT', path: '/upstream/fz', options: { body: valid, headers: { 'If-Match': pick(random, ['"abc"', 'W/', '"-1"', '1 2', '""']) } } })
  }
  return cases
}

/** Sends one case and checks Slardar's error shape: 4xx, `{status, msg}` with the same status and a message. */
export async function assertRejected(
  send: (method: string, path: string, options: RequestOptions) => Promise<AdminResponse>,
  fuzz: FuzzCase,
  what: string,
): Promise<void> {
  const res = await send(fuzz.method, fuzz.path, fuzz.options)
  assert.ok(res.status >= 400 && res.status < 500, `${what} → ${res.status} ${res.text}`)
  const body = res.json() as { status?: unknown; msg?: unknown }
  assert.equal(body.status, res.status, what)
  assert.ok(typeof body.msg === 'string' && body.msg.length > 0, `${what} has a msg`)
}

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { createSilentLogger } from '../../src/log.js'
import {
  loadSnapshotFile,
  type SnapshotBody,
  type SnapshotContent,
  type SnapshotEntry,
  type SnapshotLogger,
  SnapshotWriter,
  type SnapshotWriteError,
  writeSnapshotFile,
  type WriterClock,
  type WriterTimers,
} from '../../src/snapshot/index.js'
import { quietWindow, waitFor } from '../support/wait-for.js'

const PREFIX = 'config/slardar/'
const MAX_UINT64 = (1n << 64n) - 1n

async function makeTempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slardar-snapshot-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function entry(key: string, value: string | Buffer | null, indexes: Partial<SnapshotEntry> = {}): SnapshotEntry {
  return {
    key,
    flags: 0,
    createIndex: 10n,
    modifyIndex: 20n,
    value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
    ...indexes,
  }
}

function bodyOf(entries: readonly SnapshotEntry[], consulIndex = 1234n): SnapshotBody {
  return {
    writtenAt: '2024-05-01T10:00:05.123Z',
    slardarVersion: '1.0.0',
    prefix: PREFIX,
    datacenter: null,
    consulIndex,
    entries,
  }
}

async function loadValid(path: string): Promise<SnapshotBody> {
  const result = await loadSnapshotFile(path, PREFIX)
  if (result.kind !== 'valid') assert.fail(`expected a valid snapshot, got ${JSON.stringify(result)}`)
  return result.body
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/** Writes a file in the documented format by hand, with a correct checksum, so the loader's own checks are reached. */
async function writeSignedFile(path: string, body: unknown): Promise<void> {
  await writeFile(path, JSON.stringify({ format: 1, sha256: sha256Hex(JSON.stringify(body)), body }))
}

function documentedBody(): Record<string, unknown> {
  return {
    written_at: '2024-05-01T10:00:05.123Z',
    slardar_version: '1.0.0',
    prefix: PREFIX,
    datacenter: null,
    consul_index: '1234',
    entries: [
      { key: 'http_upstreams/a', flags: 0, create_index: '10', modify_index: '1230', value: '{"servers":[]}' },
      { key: 'http_upstreams/b', flags: 0, create_index: '11', modify_index: '1231', value: '{"servers":[]}' },
    ],
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function codeOf(err: unknown): unknown {
  return (err as { code?: unknown }).code
}

// ---------------------------------------------------------------------------------------------------------------
// Round trip and format

test('entries written and loaded back are identical, including null, empty, binary and non-ASCII values', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const entries = [
    entry('a/binary', Buffer.from([0xff, 0xfe, 0x00, 0x80])),
    entry('a/bom-and-emoji', '\uFEFFhello \u{1F600} \u00e9'),
    entry('a/empty', Buffer.alloc(0)),
    entry('a/null', null),
    entry('http_upstreams/a', '{"servers":[{"host":"127.0.0.1","port":8001}]}', { flags: 42 }),
  ]
  await writeSnapshotFile(path, bodyOf(entries))
  const body = await loadValid(path)
  assert.deepEqual(body, bodyOf(entries))
  assert.equal(body.entries[2]?.value?.length, 0)
  assert.equal(body.entries[3]?.value, null)
})

test('indexes above 2^53 come back exactly', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const big = entry('k', 'v', { createIndex: 2n ** 53n + 1n, modifyIndex: MAX_UINT64 })
  await writeSnapshotFile(path, bodyOf([big], 2n ** 63n + 7n))
  const body = await loadValid(path)
  assert.equal(body.consulIndex, 9223372036854775815n)
  assert.equal(body.entries[0]?.createIndex, 9007199254740993n)
  assert.equal(body.entries[0]?.modifyIndex, 18446744073709551615n)
  const json = JSON.parse(await readFile(path, 'utf8'))
  assert.equal(json.body.entries[0].modify_index, '18446744073709551615')
})

test('a snapshot with no entries and a datacenter round-trips', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const written = { ...bodyOf([]), datacenter: 'dc1', consulIndex: 0n }
  await writeSnapshotFile(path, written)
  assert.deepEqual(await loadValid(path), written)
})

test('the file stores UTF-8 values as text, null as null and other bytes as value_base64 instead of value', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeSnapshotFile(path, bodyOf([entry('a', Buffer.from([0xc3, 0x28])), entry('b', ''), entry('c', null), entry('d', 'é')]))
  const json = JSON.parse(await readFile(path, 'utf8'))
  assert.deepEqual(json.body.entries, [
    { key: 'a', flags: 0, create_index: '10', modify_index: '20', value_base64: 'wyg=' },
    { key: 'b', flags: 0, create_index: '10', modify_index: '20', value: '' },
    { key: 'c', flags: 0, create_index: '10', modify_index: '20', value: null },
    { key: 'd', flags: 0, create_index: '10', modify_index: '20', value: 'é' },
  ])
})

test('entries are written sorted by the UTF-8 bytes of their keys, as Consul lists them, whatever order they came in', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  // JavaScript's default order would put U+1F600 (a surrogate pair) before U+FFFD; UTF-8 byte order does not.
  await writeSnapshotFile(path, bodyOf([entry('\u{1F600}', 'x'), entry('b', 'x'), entry('\uFFFD', 'x'), entry('a', 'x')]))
  const body = await loadValid(path)
  assert.deepEqual(
    body.entries.map((e) => e.key),
    ['a', 'b', '\uFFFD', '\u{1F600}'],
  )
})

test('the sha256 field is the sha256 of the compact JSON of the body, and the same body always gives the same bytes', async (t) => {
  const dir = await makeTempDir(t)
  const body = bodyOf([entry('http_upstreams/b', '{}'), entry('http_upstreams/a', '{"servers":[]}')])
  await writeSnapshotFile(join(dir, 'one.json'), body)
  await writeSnapshotFile(join(dir, 'two.json'), { ...body, entries: [...body.entries].reverse() })
  const text = await readFile(join(dir, 'one.json'), 'utf8')
  assert.equal(text, await readFile(join(dir, 'two.json'), 'utf8'))
  const json = JSON.parse(text)
  assert.deepEqual(Object.keys(json), ['format', 'sha256', 'body'])
  assert.equal(json.format, 1)
  assert.equal(json.sha256, sha256Hex(JSON.stringify(json.body)))
  assert.deepEqual(Object.keys(json.body), ['written_at', 'slardar_version', 'prefix', 'datacenter', 'consul_index', 'entries'])
})

test('a hand-written file in the documented format loads as valid', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeSignedFile(path, documentedBody())
  const body = await loadValid(path)
  assert.equal(body.consulIndex, 1234n)
  assert.equal(body.entries[0]?.modifyIndex, 1230n)
  assert.equal(body.entries[1]?.value?.toString('utf8'), '{"servers":[]}')
})

// ---------------------------------------------------------------------------------------------------------------
// Atomic write

test('the file is created with mode 0600 in a directory created with mode 0700', async (t) => {
  const dir = join(await makeTempDir(t), 'data', 'nested')
  const path = join(dir, 'snapshot.json')
  await writeSnapshotFile(path, bodyOf([entry('k', 'secret script')]))
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  assert.equal((await stat(dir)).mode & 0o777, 0o700)
  assert.deepEqual(await readdir(dir), ['snapshot.json'])
})

test('a stale temp file with our pid is replaced and the written file is still 0600', async (t) => {
  const dir = await makeTempDir(t)
  const path = join(dir, 'snapshot.json')
  await writeFile(`${path}.tmp-${process.pid}`, 'left over by a crash', { mode: 0o644 })
  await chmod(`${path}.tmp-${process.pid}`, 0o644)
  await writeSnapshotFile(path, bodyOf([entry('k', 'v')]))
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  assert.deepEqual(await readdir(dir), ['snapshot.json'])
  await loadValid(path)
})

test('a write blocked by a directory at the temp path fails with SNAPSHOT_WRITE_FAILED and leaves the old file byte-identical', async (t) => {
  const dir = await makeTempDir(t)
  const path = join(dir, 'snapshot.json')
  await writeSnapshotFile(path, bodyOf([entry('k', 'old')]))
  const before = await readFile(path)
  const tempPath = `${path}.tmp-${process.pid}`
  await mkdir(tempPath)
  await assert.rejects(writeSnapshotFile(path, bodyOf([entry('k', 'new')])), (err: SnapshotWriteError) => {
    assert.equal(err.code, 'SNAPSHOT_WRITE_FAILED')
    assert.match(err.message, new RegExp(`^${escapeRegExp(path)}: snapshot write failed: EISDIR: .*; the previous file is unchanged$`))
    assert.ok(err.message.includes(tempPath), err.message)
    return true
  })
  assert.deepEqual(await readFile(path), before)
  assert.deepEqual((await readdir(dir)).sort(), ['snapshot.json', `snapshot.json.tmp-${process.pid}`])
  assert.ok((await stat(tempPath)).isDirectory(), 'a temp path we did not create is left alone')
})

test('a write whose target is a directory fails after writing its temp file and leaves no temp file behind', async (t) => {
  const dir = await makeTempDir(t)
  const path = join(dir, 'snapshot.json')
  await mkdir(path)
  await writeFile(join(path, 'keep'), 'x')
  await assert.rejects(writeSnapshotFile(path, bodyOf([entry('k', 'v')])), (err: SnapshotWriteError) => {
    assert.equal(err.code, 'SNAPSHOT_WRITE_FAILED')
    assert.equal(err.path, path)
    assert.match(err.reason, /^(EISDIR|ENOTEMPTY|EEXIST): .*rename.*; the previous file is unchanged$/)
    return true
  })
  assert.deepEqual(await readdir(dir), ['snapshot.json'])
  assert.deepEqual(await readdir(path), ['keep'])
})

test('a write under a parent that is a regular file fails with a message naming the path and the OS reason', async (t) => {
  const dir = await makeTempDir(t)
  await writeFile(join(dir, 'data'), 'not a directory')
  const path = join(dir, 'data', 'snapshot.json')
  await assert.rejects(writeSnapshotFile(path, bodyOf([entry('k', 'v')])), (err: SnapshotWriteError) => {
    assert.equal(err.code, 'SNAPSHOT_WRITE_FAILED')
    assert.match(err.message, new RegExp(`^${escapeRegExp(path)}: snapshot write failed: (ENOTDIR|EEXIST): `))
    return true
  })
  assert.equal(await readFile(join(dir, 'data'), 'utf8'), 'not a directory')
})

test('a body with the same key twice is refused and the old file stays byte-identical', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeSnapshotFile(path, bodyOf([entry('k', 'old')]))
  const before = await readFile(path)
  await assert.rejects(writeSnapshotFile(path, bodyOf([entry('k', 'a'), entry('k', 'b')])), {
    code: 'SNAPSHOT_WRITE_FAILED',
    message: `${path}: snapshot write failed: refusing to write an invalid snapshot: entry "k" appears twice; the previous file is unchanged`,
  })
  assert.deepEqual(await readFile(path), before)
})

test('overlapping writes to one path all succeed and the file holds the last one started', async (t) => {
  const dir = await makeTempDir(t)
  const path = join(dir, 'snapshot.json')
  await Promise.all([1n, 2n, 3n, 4n, 5n].map((index) => writeSnapshotFile(path, bodyOf([entry('k', `v${index}`)], index))))
  assert.equal((await loadValid(path)).consulIndex, 5n)
  assert.deepEqual(await readdir(dir), ['snapshot.json'])
})

// ---------------------------------------------------------------------------------------------------------------
// Load: every way a file is refused

test('a missing file loads as missing, not as an error', async (t) => {
  const path = join(await makeTempDir(t), 'absent', 'snapshot.json')
  assert.deepEqual(await loadSnapshotFile(path, PREFIX), { kind: 'missing' })
})

test('an unreadable snapshot path is invalid with the OS reason', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await mkdir(path)
  const result = await loadSnapshotFile(path, PREFIX)
  assert.equal(result.kind, 'invalid')
  assert.match((result as { reason: string }).reason, new RegExp(`^${escapeRegExp(path)}: cannot read it \\(EISDIR: .*\\); ignoring it$`))
})

test('a truncated file is invalid as not valid JSON', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeSnapshotFile(path, bodyOf([entry('k', 'v')]))
  const text = await readFile(path, 'utf8')
  await writeFile(path, text.slice(0, text.length - 20))
  const result = await loadSnapshotFile(path, PREFIX)
  assert.equal(result.kind, 'invalid')
  assert.match((result as { reason: string }).reason, new RegExp(`^${escapeRegExp(path)}: not valid JSON \\(.*; file truncated or damaged\\); ignoring it$`))
})

test('a file that is not UTF-8 is invalid as damaged', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeFile(path, Buffer.from([0x7b, 0xff, 0x7d]))
  assert.deepEqual(await loadSnapshotFile(path, PREFIX), {
    kind: 'invalid',
    reason: `${path}: not UTF-8 text (file damaged); ignoring it`,
  })
})

test('an edited value is invalid with a checksum mismatch and nothing of it is loaded', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeSnapshotFile(path, bodyOf([entry('http_upstreams/a', '{"servers":[{"port":8001}]}')]))
  await writeFile(path, (await readFile(path, 'utf8')).replace('8001', '8002'))
  assert.deepEqual(await loadSnapshotFile(path, PREFIX), {
    kind: 'invalid',
    reason: `${path}: checksum mismatch (file edited or truncated); ignoring it`,
  })
})

test('a file written for another prefix is invalid and names both prefixes', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeSnapshotFile(path, bodyOf([entry('k', 'v')]))
  assert.deepEqual(await loadSnapshotFile(path, 'config/other/'), {
    kind: 'invalid',
    reason: `${path}: written for prefix "config/slardar/", but consul.config_key_prefix is "config/other/"; ignoring it`,
  })
})

test('an unknown format is invalid and names the format it found', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeFile(path, JSON.stringify({ format: 2, sha256: 'x', body: {}, extra: true }))
  assert.deepEqual(await loadSnapshotFile(path, PREFIX), {
    kind: 'invalid',
    reason: `${path}: unknown format 2 (this version reads format 1; written by a newer Slardar?); ignoring it`,
  })
})

test('JSON that is not a snapshot file is invalid', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  await writeFile(path, '[1, 2, 3]')
  assert.deepEqual(await loadSnapshotFile(path, PREFIX), {
    kind: 'invalid',
    reason: `${path}: not a snapshot file (expected an object with "format", "sha256" and "body"); ignoring it`,
  })
})

/** The documented body as the shape cases edit it. */
interface LooseBody {
  entries: Record<string, unknown>[]
  [field: string]: unknown
}

/** Files with a correct checksum whose content breaks the format; `edit` changes the documented body. */
const shapeCases: readonly { readonly what: string; readonly edit: (body: LooseBody) => unknown; readonly problem: string }[] = [
  {
    what: 'entries are out of order',
    edit: (body) => ({ ...body, entries: [...body.entries].reverse() }),
    problem: 'body.entries[1]: key "http_upstreams/a" does not sort after "http_upstreams/b" (entries must be sorted by key, each key once)',
  },
  {
    what: 'a key appears twice',
    edit: (body) => ({ ...body, entries: [body.entries[0], body.entries[0]] }),
    problem: 'body.entries[1]: key "http_upstreams/a" does not sort after "http_upstreams/a" (entries must be sorted by key, each key once)',
  },
  {
    what: 'an index has a leading zero',
    edit: (body) => ({ ...body, consul_index: '01234' }),
    problem: 'body.consul_index must be a decimal string 0..18446744073709551615, got "01234"',
  },
  {
    what: 'an index is a JSON number',
    edit: (body) => { body.entries[0].create_index = 10; return body },
    problem: 'body.entries[0].create_index must be a decimal string 0..18446744073709551615, got 10',
  },
  {
    what: 'an index is above 2^64-1',
    edit: (body) => { body.entries[1].modify_index = '18446744073709551616'; return body },
    problem: 'body.entries[1].modify_index must be a decimal string 0..18446744073709551615, got "18446744073709551616"',
  },
  {
    what: 'flags are fractional',
    edit: (body) => { body.entries[0].flags = 1.5; return body },
    problem: 'body.entries[0].flags must be an integer 0..2^53-1, got 1.5',
  },
  {
    what: 'an entry has both value and value_base64',
    edit: (body) => { body.entries[0].value_base64 = 'YQ=='; return body },
    problem: 'body.entries[0] must have exactly one of "value" and "value_base64"',
  },
  {
    what: 'an entry has no value at all',
    edit: (body) => { delete body.entries[0].value; return body },
    problem: 'body.entries[0] must have exactly one of "value" and "value_base64"',
  },
  {
    what: 'value_base64 is not canonical base64',
    edit: (body) => { delete body.entries[0].value; body.entries[0].value_base64 = 'YQ'; return body },
    problem: 'body.entries[0].value_base64 must be canonical base64, got "YQ"',
  },
  {
    what: 'a text value holds a lone surrogate',
    edit: (body) => { body.entries[0].value = '\ud800'; return body },
    problem: 'body.entries[0].value is not valid Unicode text',
  },
  {
    what: 'an entry has an unexpected field',
    edit: (body) => { body.entries[0].session = 'abc'; return body },
    problem: 'body.entries[0]: unexpected field "session"',
  },
  {
    what: 'the body lacks consul_index',
    edit: (body) => { delete body.consul_index; return body },
    problem: 'body: "consul_index" is missing',
  },
  {
    what: 'written_at is not a real time',
    edit: (body) => ({ ...body, written_at: '2024-02-30T10:00:05.123Z' }),
    problem: 'body.written_at must look like "2024-05-01T10:00:05.123Z", got "2024-02-30T10:00:05.123Z"',
  },
  {
    what: 'entries is not an array',
    edit: (body) => ({ ...body, entries: {} }),
    problem: 'body.entries must be an array, got {}',
  },
]

for (const shapeCase of shapeCases) {
  test(`a checksummed file where ${shapeCase.what} is invalid with a reason naming the field`, async (t) => {
    const path = join(await makeTempDir(t), 'snapshot.json')
    await writeSignedFile(path, shapeCase.edit(documentedBody() as unknown as LooseBody))
    assert.deepEqual(await loadSnapshotFile(path, PREFIX), { kind: 'invalid', reason: `${path}: ${shapeCase.problem}; ignoring it` })
  })
}

test('a file with a malformed sha256 or an extra top-level field is invalid', async (t) => {
  const dir = await makeTempDir(t)
  const body = documentedBody()
  await writeFile(join(dir, 'a.json'), JSON.stringify({ format: 1, sha256: 'ABC', body }))
  await writeFile(join(dir, 'b.json'), JSON.stringify({ format: 1, sha256: sha256Hex(JSON.stringify(body)), body, note: 'hi' }))
  assert.deepEqual(await loadSnapshotFile(join(dir, 'a.json'), PREFIX), {
    kind: 'invalid',
    reason: `${join(dir, 'a.json')}: sha256 must be 64 lower-case hex digits, got "ABC"; ignoring it`,
  })
  assert.deepEqual(await loadSnapshotFile(join(dir, 'b.json'), PREFIX), {
    kind: 'invalid',
    reason: `${join(dir, 'b.json')}: the top level: unexpected field "note"; ignoring it`,
  })
})

// ---------------------------------------------------------------------------------------------------------------
// SnapshotWriter

/** A clock and timers moved by hand. Writes still hit the real disk; the test waits for them with waitFor. */
class ManualTime implements WriterClock, WriterTimers {
  #nowMs = Date.parse('2024-05-01T10:00:00.000Z')
  #timers: { dueMs: number; delayMs: number; callback: () => void; isCancelled: boolean }[] = []

  nowMs(): number {
    return this.#nowMs
  }

  startTimer(callback: () => void, delayMs: number): () => void {
    const timer = { dueMs: this.#nowMs + delayMs, delayMs, callback, isCancelled: false }
    this.#timers.push(timer)
    return () => {
      timer.isCancelled = true
    }
  }

  advance(ms: number): void {
    this.#nowMs += ms
  }

  /** Delays of the timers still armed. */
  armedDelaysMs(): number[] {
    return this.#timers.filter((timer) => !timer.isCancelled).map((timer) => timer.delayMs)
  }

  /** Moves time to the earliest armed timer and runs it. */
  fireNext(): void {
    const armed = this.#timers.filter((timer) => !timer.isCancelled).sort((a, b) => a.dueMs - b.dueMs)
    const next = armed[0]
    assert.ok(next !== undefined, 'no timer is armed')
    this.#timers = armed.slice(1)
    this.#nowMs = Math.max(this.#nowMs, next.dueMs)
    next.callback()
  }
}

interface LogLine {
  readonly level: 'info' | 'error'
  readonly fields: object
  readonly message: string
}

function captureLog(): { readonly lines: LogLine[]; readonly logger: SnapshotLogger } {
  const lines: LogLine[] = []
  return {
    lines,
    logger: {
      info: (fields, message) => lines.push({ level: 'info', fields, message }),
      error: (fields, message) => lines.push({ level: 'error', fields, message }),
    },
  }
}

function contentAt(consulIndex: bigint): () => SnapshotContent {
  return () => ({ prefix: PREFIX, datacenter: null, consulIndex, entries: [entry('http_upstreams/a', `state ${consulIndex}`)] })
}

test('a new writer reports no writes and no error', () => {
  const writer = new SnapshotWriter({ path: './data/snapshot.json', logger: captureLog().logger })
  assert.deepEqual(writer.status(), {
    path: './data/snapshot.json',
    last_write: null,
    last_error: null,
    writes_ok: 0,
    writes_failed: 0,
  })
})

test('the first change is written at once and a change within the next second waits until the second is up', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const time = new ManualTime()
  const writer = new SnapshotWriter({ path, logger: captureLog().logger, clock: time, timers: time, slardarVersion: '9.9.9' })
  writer.schedule(contentAt(1n))
  assert.deepEqual(time.armedDelaysMs(), [0])
  time.fireNext()
  await waitFor(() => writer.status().writes_ok === 1, { withinMs: 5_000, what: 'the first write' })
  const first = await loadValid(path)
  assert.equal(first.consulIndex, 1n)
  assert.equal(first.slardarVersion, '9.9.9')
  assert.equal(first.writtenAt, '2024-05-01T10:00:00.000Z')

  time.advance(300)
  writer.schedule(contentAt(2n))
  writer.schedule(contentAt(3n))
  assert.deepEqual(time.armedDelaysMs(), [700])
  time.fireNext()
  await waitFor(() => writer.status().writes_ok === 2, { withinMs: 5_000, what: 'the coalesced write' })
  const second = await loadValid(path)
  assert.equal(second.consulIndex, 3n)
  assert.equal(second.writtenAt, '2024-05-01T10:00:01.000Z')
  assert.deepEqual(time.armedDelaysMs(), [])
  // /status time: local wall time of the write, to the second.
  const lastWrite = writer.status().last_write
  assert.match(lastWrite ?? '', /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/)
  assert.equal(new Date((lastWrite ?? '').replace(' ', 'T')).getTime(), Date.parse('2024-05-01T10:00:01.000Z'))
})

test('flush writes the newest state at once, without waiting for the interval', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const time = new ManualTime()
  const writer = new SnapshotWriter({ path, logger: captureLog().logger, clock: time, timers: time })
  writer.schedule(contentAt(1n))
  time.fireNext()
  await waitFor(() => writer.status().writes_ok === 1, { withinMs: 5_000, what: 'the first write' })
  writer.schedule(contentAt(2n))
  assert.deepEqual(time.armedDelaysMs(), [1000])
  assert.deepEqual(await writer.flush(), { ok: true })
  assert.equal((await loadValid(path)).consulIndex, 2n)
  assert.deepEqual(time.armedDelaysMs(), [], 'the debounce timer is cancelled')
  assert.equal(writer.status().writes_ok, 2)
})

test('flush with nothing scheduled writes nothing and reports ok', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const writer = new SnapshotWriter({ path, logger: captureLog().logger })
  assert.deepEqual(await writer.flush(), { ok: true })
  assert.deepEqual(await loadSnapshotFile(path, PREFIX), { kind: 'missing' })
})

test('a failed write is logged once, shown in status, retried with growing delays and its recovery is logged', async (t) => {
  const dir = await makeTempDir(t)
  const blocker = join(dir, 'data')
  await writeFile(blocker, 'a file where the directory should be')
  const path = join(blocker, 'snapshot.json')
  const time = new ManualTime()
  const log = captureLog()
  const writer = new SnapshotWriter({ path, logger: log.logger, clock: time, timers: time })

  assert.doesNotThrow(() => writer.schedule(contentAt(1n)))
  const delaysMs: number[] = []
  for (let attempt = 1; attempt <= 4; attempt++) {
    time.fireNext()
    await waitFor(() => writer.status().writes_failed === attempt, { withinMs: 5_000, what: `failed attempt ${attempt}` })
    delaysMs.push(...time.armedDelaysMs())
  }
  assert.deepEqual(delaysMs, [1000, 2000, 4000, 8000])
  const status = writer.status()
  assert.match(status.last_error ?? '', new RegExp(`^${escapeRegExp(path)}: snapshot write failed: (ENOTDIR|EEXIST): .*; the previous file is unchanged$`))
  assert.equal(status.writes_ok, 0)
  assert.equal(status.last_write, null)
  assert.equal(log.lines.length, 1)
  assert.equal(log.lines[0]?.level, 'error')
  assert.deepEqual(log.lines[0]?.fields, { code: 'SNAPSHOT_WRITE_FAILED', path })
  assert.equal(log.lines[0]?.message, `${status.last_error}; serving goes on, will retry`)

  await rm(blocker)
  writer.schedule(contentAt(2n))
  time.fireNext()
  await waitFor(() => writer.status().writes_ok === 1, { withinMs: 5_000, what: 'the write after the disk recovered' })
  assert.equal((await loadValid(path)).consulIndex, 2n)
  assert.equal(writer.status().last_error, null)
  assert.deepEqual(log.lines.slice(1), [
    { level: 'info', fields: { path, failed_attempts: 4 }, message: `${path}: snapshot written again after 4 failed attempt(s)` },
  ])
  assert.deepEqual(time.armedDelaysMs(), [])
})

test('flush reports a failed write as a value carrying SNAPSHOT_WRITE_FAILED instead of throwing', async (t) => {
  const dir = await makeTempDir(t)
  await writeFile(join(dir, 'data'), 'x')
  const path = join(dir, 'data', 'snapshot.json')
  const time = new ManualTime()
  const writer = new SnapshotWriter({ path, logger: captureLog().logger, clock: time, timers: time })
  writer.schedule(contentAt(1n))
  const result = await writer.flush()
  assert.equal(result.ok, false)
  const error = (result as { error: SnapshotWriteError }).error
  assert.equal(codeOf(error), 'SNAPSHOT_WRITE_FAILED')
  assert.equal(error.path, path)
  assert.deepEqual(time.armedDelaysMs(), [1000], 'the failed state is retried later')
})

test('a content provider that throws counts as a failed write and leaves the previous file intact', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const time = new ManualTime()
  const writer = new SnapshotWriter({ path, logger: captureLog().logger, clock: time, timers: time })
  writer.schedule(contentAt(1n))
  await writer.flush()
  const before = await readFile(path)
  writer.schedule(() => {
    throw new Error('live snapshot not built yet')
  })
  const result = await writer.flush()
  assert.equal(result.ok, false)
  assert.equal(
    writer.status().last_error,
    `${path}: snapshot write failed: could not collect the entries to write: live snapshot not built yet; the previous file is unchanged`,
  )
  assert.deepEqual(await readFile(path), before)
})

test('with real timers, a burst of changes within a second makes at most two writes and the file ends with the newest state', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const writer = new SnapshotWriter({ path, logger: createSilentLogger() })
  for (let index = 1n; index <= 50n; index++) writer.schedule(contentAt(index))
  await waitFor(() => writer.status().writes_ok === 1, { withinMs: 5_000, what: 'the leading write of the burst' })
  const first = await loadValid(path)
  assert.equal(first.consulIndex, 50n, 'the provider is called when the write starts, so it sees the newest state')

  for (let index = 51n; index <= 100n; index++) {
    writer.schedule(contentAt(index))
    if (index % 10n === 0n) await new Promise((resolve) => setImmediate(resolve))
  }
  const last = await waitFor(
    async () => {
      const result = await loadSnapshotFile(path, PREFIX)
      return result.kind === 'valid' && result.body.consulIndex === 100n ? result.body : null
    },
    { withinMs: 5_000, what: 'the newest state on disk' },
  )
  assert.ok(Date.parse(last.writtenAt) - Date.parse(first.writtenAt) >= 990, `${first.writtenAt} -> ${last.writtenAt}`)
  await quietWindow(1_200)
  assert.deepEqual({ ...writer.status(), last_write: null }, { path, last_write: null, last_error: null, writes_ok: 2, writes_failed: 0 })
})

test('with real timers, flush puts the newest state on disk before it resolves, even right after a write', async (t) => {
  const path = join(await makeTempDir(t), 'snapshot.json')
  const writer = new SnapshotWriter({ path, logger: createSilentLogger() })
  writer.schedule(contentAt(1n))
  assert.deepEqual(await writer.flush(), { ok: true })
  assert.equal((await loadValid(path)).consulIndex, 1n)
  const startedMs = performance.now()
  writer.schedule(contentAt(2n))
  assert.deepEqual(await writer.flush(), { ok: true })
  assert.equal((await loadValid(path)).consulIndex, 2n)
  assert.ok(performance.now() - startedMs < 900, 'flush did not wait for the one-second interval')
  assert.equal(writer.status().writes_ok, 2)
})

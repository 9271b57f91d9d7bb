/** `--data DIR` (consul.md §24): the KV table and the global counter in `DIR/consul-kv.json`, so a dev restart keeps
 *  its keys and its indexes never go backwards. Written like the proxy's snapshot file (temp file, fsync, rename,
 *  fsync of the directory; directory 0700, file 0600) at most ~200 ms after a change and on shutdown. A file that
 *  fails its checksum stops the server: dev data is never wiped silently. Sessions are not persisted, so loaded
 *  keys come back unlocked (LockIndex kept, no lock-delay). */

import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { corruptDataFile, DevServerError } from './errors.js'
import type { KvEntry, KvTableState } from './store.js'

export const DATA_FILE_NAME = 'consul-kv.json'
const FORMAT = 1
/** Bounds the delay between a change and its write; the spec allows at most 200 ms. */
const WRITE_DELAY_MS = 100

export interface PersistedState {
  /** The global index counter. */
  readonly index: bigint
  readonly kv: KvTableState
}

interface EntryRecord {
  key: string
  flags: string
  value: string | null
  lock_index: string
  create_index: string
  modify_index: string
}

interface BodyRecord {
  index: string
  kvs_index: string
  entries: EntryRecord[]
  tombstones: { key: string; index: string }[]
}

function checksumOf(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex')
}

function toBody(state: PersistedState): BodyRecord {
  return {
    index: state.index.toString(),
    kvs_index: state.kv.kvsIndex.toString(),
    entries: state.kv.entries.map((entry) => ({
      key: entry.key,
      flags: entry.flags.toString(),
      value: entry.value === null ? null : entry.value.toString('base64'),
      lock_index: entry.lockIndex.toString(),
      create_index: entry.createIndex.toString(),
      modify_index: entry.modifyIndex.toString(),
    })),
    tombstones: [...state.kv.tombstones].map(([key, index]) => ({ key, index: index.toString() })),
  }
}

/** Reads a body that passed its checksum; a wrong shape still means the file cannot be trusted. */
function fromBody(body: unknown, file: string): PersistedState {
  const fail = (where: string): never => {
    throw corruptDataFile(file, `${where} is missing or malformed`)
  }
  const record = (value: unknown, where: string): Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : fail(where)
  const index = (value: unknown, where: string): bigint =>
    typeof value === 'string' && /^[0-9]{1,20}$/.test(value) && BigInt(value) < 1n << 64n ? BigInt(value) : fail(where)
  const text = (value: unknown, where: string): string => (typeof value === 'string' ? value : fail(where))
  const list = (value: unknown, where: string): unknown[] => (Array.isArray(value) ? value : fail(where))

  const root = record(body, 'body')
  const entries = list(root['entries'], 'body.entries').map((raw, i): KvEntry => {
    const where = `body.entries[${i}]`
    const entry = record(raw, where)
    const value = entry['value']
    if (value !== null && (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))) fail(`${where}.value`)
    const bytes = value === null ? null : Buffer.from(value as string, 'base64')
    return {
      key: text(entry['key'], `${where}.key`),
      flags: index(entry['flags'], `${where}.flags`),
      value: bytes === null || bytes.length === 0 ? null : bytes,
      lockIndex: index(entry['lock_index'], `${where}.lock_index`),
      session: null,
      createIndex: index(entry['create_index'], `${where}.create_index`),
      modifyIndex: index(entry['modify_index'], `${where}.modify_index`),
    }
  })
  const tombstones = new Map<string, bigint>()
  list(root['tombstones'], 'body.tombstones').forEach((raw, i) => {
    const tombstone = record(raw, `body.tombstones[${i}]`)
    tombstones.set(text(tombstone['key'], `body.tombstones[${i}].key`), index(tombstone['index'], `body.tombstones[${i}].index`))
  })
  return {
    index: index(root['index'], 'body.index'),
    kv: { kvsIndex: index(root['kvs_index'], 'body.kvs_index'), entries, tombstones },
  }
}

/** Loads `DIR/consul-kv.json`; null when there is none. Throws DevServerError when it exists but cannot be used. */
export async function loadDataFile(dir: string): Promise<PersistedState | null> {
  const file = join(dir, DATA_FILE_NAME)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new DevServerError('CONSUL_DEV_DATA_UNREADABLE', `consul-dev: cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
    })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw corruptDataFile(file, `not JSON: ${(err as Error).message}`, err)
  }
  const root = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {}
  if (root['format'] !== FORMAT) {
    throw corruptDataFile(file, `unknown format ${JSON.stringify(root['format'])}, expected ${FORMAT}`)
  }
  if (root['sha256'] !== checksumOf(root['body'])) throw corruptDataFile(file, 'checksum mismatch')
  return fromBody(root['body'], file)
}

/** Atomic replace: a crash leaves either the old file or the new one, never a torn write. */
export async function writeDataFile(dir: string, state: PersistedState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, DATA_FILE_NAME)
  const temp = `${file}.tmp-${process.pid}`
  const body = toBody(state)
  const handle = await open(temp, 'w', 0o600)
  try {
    await handle.writeFile(JSON.stringify({ format: FORMAT, sha256: checksumOf(body), body }))
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, file)
  const dirHandle = await open(dir, 'r')
  try {
    await dirHandle.sync()
  } finally {
    await dirHandle.close()
  }
}

/** Debounces writes: one write in flight at a time, the next one as soon as it ends if more changes came. A failed
 *  write is reported and retried on the next change (or at shutdown), never in a loop. */
export class PersistenceScheduler {
  private isDirty = false
  private isClosed = false
  private timer: NodeJS.Timeout | null = null
  private writing: Promise<void> | null = null

  constructor(
    private readonly dir: string,
    private readonly capture: () => PersistedState,
    private readonly onWriteError: (err: unknown) => void,
  ) {}

  markDirty(): void {
    this.isDirty = true
    if (this.timer === null && this.writing === null && !this.isClosed) this.schedule(WRITE_DELAY_MS)
  }

  /** Shutdown: stops scheduling and writes whatever is pending. A failed final write is reported, not thrown. */
  async close(): Promise<void> {
    this.isClosed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    await this.writing
    if (this.isDirty) await this.writeNow()
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null
      void this.writeNow()
    }, delayMs)
    this.timer.unref()
  }

  private writeNow(): Promise<void> {
    this.isDirty = false
    let hasFailed = false
    const attempt = writeDataFile(this.dir, this.capture())
      .catch((err: unknown) => {
        hasFailed = true
        this.isDirty = true
        this.onWriteError(err)
      })
      .finally(() => {
        this.writing = null
        if (this.isDirty && !hasFailed && !this.isClosed && this.timer === null) this.schedule(0)
      })
    this.writing = attempt
    return attempt
  }
}

/** Starts a real Primary for an integration test: against a given Consul address, with its snapshot file in a fresh
 *  temp directory (never ./data of the checkout, which would leak state between tests), a short watch wait and
 *  slow heartbeats unless the test says otherwise. Stopped and cleaned up by `t.after`. */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import pino from 'pino'
import type { Peer } from '../../src/checkups/index.js'
import { Primary } from '../../src/cluster/primary.js'
import { buildConfig, type Config } from '../../src/config/index.js'
import { createSilentLogger, type Logger } from '../../src/log.js'
import { writeSnapshotFile } from '../../src/snapshot/index.js'

export const PREFIX = 'config/slardar/'

const cleanups = new WeakMap<TestContext, (() => unknown)[]>()

/** Runs `cleanup` at the end of the test, before anything deferred earlier: node:test runs `t.after` hooks in the
 *  order they were added, but a primary must stop (its last snapshot write) before its temp dir is removed. */
export function deferCleanup(t: TestContext, cleanup: () => unknown): void {
  let stack = cleanups.get(t)
  if (stack === undefined) {
    const created: (() => unknown)[] = []
    stack = created
    cleanups.set(t, created)
    t.after(async () => {
      for (const run of created.reverse()) await run()
    })
  }
  stack.push(cleanup)
}

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slardar-sync-'))
  deferCleanup(t, () => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A config with the test's overrides merged one level deep over the harness defaults. */
export function testConfig(consulAddr: string, snapshotPath: string, extra: Record<string, Record<string, unknown>> = {}): Config {
  const base: Record<string, Record<string, unknown>> = {
    consul: { address: consulAddr, wait: '2s', timeout: 2 },
    global: { checkup_timer_interval: 60 },
    snapshot: { path: snapshotPath },
    jobs: { full_resync: null, snapshot_housekeeping: null },
  }
  const merged: Record<string, unknown> = { ...base }
  for (const [section, values] of Object.entries(extra)) {
    merged[section] = typeof values === 'object' && values !== null && !Array.isArray(values) ? { ...base[section], ...values } : values
  }
  return buildConfig(merged, 'test')
}

/** Creates (does not start) a Primary whose stop runs at the end of the test. */
export function createPrimary(t: TestContext, config: Config, log: Logger = createSilentLogger()): Primary {
  const primary = new Primary(config, log)
  deferCleanup(t, () => primary.stop())
  return primary
}

export function peersOf(primary: Primary, name: string): Peer[] {
  return (primary.checkups.table.get(name)?.levels ?? []).flatMap((level) => [...level.peers])
}

/** A disabled-heartbeat upstream value on `port` (no probes in tests that only care about config). */
export function upstreamValue(port: number): string {
  return JSON.stringify({ enable: false, servers: [{ host: '127.0.0.1', port }] })
}

export interface CapturedLog {
  readonly log: Logger
  /** Every line written so far, parsed. */
  readonly lines: readonly { readonly level: number; readonly msg: string; readonly [field: string]: unknown }[]
}

/** A real pino logger that keeps its lines in memory, for tests that check what an operator reads. */
export function captureLogger(): CapturedLog {
  const lines: { level: number; msg: string }[] = []
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) })
  return { log, lines }
}

/** Writes a valid snapshot file through the product's own writer. `entries` maps keys (below the prefix) to values. */
export async function writeSnapshot(path: string, entries: Readonly<Record<string, string>>, consulIndex = 1000n): Promise<void> {
  await writeSnapshotFile(path, {
    writtenAt: new Date().toISOString(),
    slardarVersion: '0.0.0-test',
    prefix: PREFIX,
    datacenter: null,
    consulIndex,
    entries: Object.entries(entries).map(([key, value], i) => ({
      key, flags: 0, createIndex: BigInt(100 + i), modifyIndex: BigInt(100 + i), value: Buffer.from(value),
    })),
  })
}

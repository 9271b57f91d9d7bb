/** A preload for a product process under test (`node --expose-gc --import <this file> cli.js start …`): on SIGUSR2
 *  it runs full garbage collections and appends `process.memoryUsage()` as one JSON line to the file named by
 *  `SLARDAR_MEMORY_PROBE_FILE`. The soak reads it to tell a leak from V8 merely sizing its heap: plain RSS also
 *  holds the V8 heap's empty capacity, which V8 grows with the allocation rate and gives back on its own schedule.
 *  SIGUSR2 because the product uses SIGUSR1 (log reopen) and SIGHUP (reload) and leaves SIGUSR2 alone.
 *
 *    const probe = memoryProbeArgs(dir)     // { nodeArgs, env, file }
 *    // spawn with probe.nodeArgs and probe.env, then:
 *    const usage = await measureAfterGc(pid, probe.file)
 */

import { appendFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { waitFor } from './wait-for.js'

const FILE_ENV = 'SLARDAR_MEMORY_PROBE_FILE'
const SETTLE_MS = 1_000

export interface MemoryAfterGc {
  readonly rss: number
  readonly heapTotal: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
}

/** Resident memory the process actually uses: RSS less the V8 heap's empty capacity (heapTotal − heapUsed, which
 *  after a full GC is room V8 reserved, not objects). A leak of JS objects or of native memory raises it; V8
 *  growing its young or old generation for a high allocation rate does not. */
export function residentInUse(usage: MemoryAfterGc): number {
  return usage.rss - (usage.heapTotal - usage.heapUsed)
}

/** How to start a process with the probe preloaded; `file` is where its measurements go. */
export function memoryProbeArgs(dir: string): { nodeArgs: string[]; env: Record<string, string>; file: string } {
  const file = join(dir, 'memory-probe.jsonl')
  return { nodeArgs: ['--expose-gc', '--import', import.meta.url], env: { [FILE_ENV]: file }, file }
}

/** Signals `pid` (started with memoryProbeArgs) and resolves with its memory after a full GC. */
export async function measureAfterGc(pid: number, file: string): Promise<MemoryAfterGc> {
  const before = await readMeasurements(file)
  process.kill(pid, 'SIGUSR2')
  return waitFor(async () => (await readMeasurements(file))[before.length] ?? null, { withinMs: 10_000, what: `a memory measurement from pid ${pid}` })
}

async function readMeasurements(file: string): Promise<MemoryAfterGc[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return ''
    throw err
  })
  return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as MemoryAfterGc)
}

/** Preloaded into the product process: installs the SIGUSR2 handler. Importing this module from a test does not. */
function installProbe(file: string): void {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error('the memory probe needs node --expose-gc')
  process.on('SIGUSR2', () => {
    // Twice: the first full GC can leave objects whose finalizers free more on the second. Then a pause, because
    // V8 returns freed heap pages to the system on a background thread, so RSS lags the collection.
    collect()
    collect()
    setTimeout(() => {
      collect()
      const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage()
      appendFileSync(file, JSON.stringify({ rss, heapTotal, heapUsed, external, arrayBuffers }) + '\n')
    }, SETTLE_MS)
  })
}

const probeFile = process.env[FILE_ENV]
// Only the process started with `--import <this file>` installs it, never a test that imports the helpers above.
if (probeFile !== undefined && process.execArgv.includes(import.meta.url)) installProbe(probeFile)

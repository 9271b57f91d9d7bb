/** Housekeeping of the snapshot file's directory (the `jobs.snapshot_housekeeping` job, README "Jobs"). Atomic
 *  writes go through `<path>.tmp-<pid>`; a process killed mid-write leaves its temp file behind, and every restart
 *  has a new pid, so those files would pile up forever. This removes the ones whose writer is gone. */

import { readdir, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** True while a process with `pid` exists (signal 0 checks without sending anything). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Deletes `<path>.tmp-<pid>` files of processes that no longer run (never this process's own). Resolves with the
 *  removed paths; a missing directory is nothing to clean. */
export async function removeStaleTempFiles(path: string, isAlive: (pid: number) => boolean = isProcessAlive): Promise<string[]> {
  const directory = dirname(path)
  const prefix = `${basename(path)}.tmp-`
  let names: string[]
  try {
    names = await readdir(directory)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const removed: string[] = []
  for (const name of names) {
    if (!name.startsWith(prefix)) continue
    const pidText = name.slice(prefix.length)
    if (!/^[1-9][0-9]*$/.test(pidText)) continue
    const pid = Number(pidText)
    if (pid === process.pid || isAlive(pid)) continue
    const stale = join(directory, name)
    try {
      await unlink(stale)
      removed.push(stale)
    } catch (err) {
      // Another process may have cleaned it first.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return removed
}

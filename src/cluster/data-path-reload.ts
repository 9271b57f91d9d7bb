/** SIGHUP reload (proxy.md §10) of one process's data paths: the HTTP and stream proxies take the reloaded options, a
 *  new planner (`proxy.next_upstream`) and, when `log.access` changed, a new access log (the old one is flushed and
 *  closed); the app log takes `log.level`. Shared by the single process and each worker, which own the parts. Upstream
 *  changes (static ones, new defaults) reach the data paths through the table, not from here. */

import type { AttemptPlanner } from '../checkups/index.js'
import type { Config } from '../config/index.js'
import { type AccessLog, createAccessLog, type Logger } from '../log.js'
import type { HttpProxy } from '../proxy/index.js'
import type { StreamProxy } from '../stream/index.js'

export interface DataPathReload {
  readonly running: Config
  readonly next: Config
  /** The process's root app logger: its children follow its level. */
  readonly log: Logger
  readonly proxy: HttpProxy
  readonly stream: StreamProxy
  /** Built by the owner from `next`, with the owner's feedback route. */
  readonly planner: AttemptPlanner
  readonly accessLog: AccessLog
  /** Called with the new access log before the old one closes, when `log.access` changed. */
  readonly setAccessLog: (accessLog: AccessLog) => void
}

/** Resolves with `next` (the config now in effect) once a replaced access log is closed. */
export async function reconfigureDataPaths(reload: DataPathReload): Promise<Config> {
  const { running, next } = reload
  reload.log.level = next.log.level
  let accessLog = reload.accessLog
  const replaced = next.log.access === running.log.access ? null : accessLog
  if (replaced !== null) {
    accessLog = createAccessLog(next.log.access, (err) => reload.log.error({ err }, `access log ${next.log.access}: ${err.message}`))
    reload.setAccessLog(accessLog)
  }
  reload.proxy.reconfigure({ config: next, planner: reload.planner, accessLog })
  reload.stream.reconfigure({ config: next, planner: reload.planner, accessLog })
  await replaced?.close()
  return next
}

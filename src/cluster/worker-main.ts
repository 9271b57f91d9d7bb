/** Entry point of a worker process (forked by supervisor.ts through node:cluster). Owns the process edges: the IPC
 *  channel, signals and exit. It says hello once its listener is in place (a message sent earlier would be lost),
 *  builds the ProxyWorker from `init`, then hands it every message in arrival order; everything else is in worker.ts.
 *
 *  Signals: SIGINT from a terminal reaches the whole process group, but shutdown is the primary's call (it sends
 *  `drain`), so the worker ignores it. A SIGTERM sent to this worker alone drains it like `drain` does; the primary
 *  then starts a replacement. If the primary dies, Node's cluster module ends the worker at once. */

import { createAppLogger, type Logger } from '../log.js'
import { assertNever, type FromWorker, isMessage, type ToWorker } from './messages.js'
import { ProxyWorker } from './worker.js'

/** Sends unless the channel is gone (the primary exited): there is nobody left to tell. Resolves once the message
 *  is handed to the channel, so a message sent just before exit still arrives. */
function send(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (process.connected && process.send !== undefined) process.send(message, undefined, {}, () => resolve())
    else resolve()
  })
}

let worker: ProxyWorker | null = null
let log: Logger | null = null
let drainTimeoutMs = 0
/** Messages are applied one after another; `init` and the first `state.full` take a while (script runtimes, listen). */
let queue: Promise<void> = Promise.resolve()
/** Bound on the wait for the primary's `exit` after `drained` (the primary may be gone or stuck). */
const EXIT_ANSWER_TIMEOUT_MS = 2000
let onExitAnswer: (() => void) | null = null

process.on('message', (message: unknown) => {
  if (!isMessage(message)) return
  // Not queued: it answers `drained`, sent from inside the queued drain.
  if (message.kind === 'exit') return onExitAnswer?.()
  queue = queue.then(() => apply(message as ToWorker))
})
process.on('SIGINT', () => undefined)
process.on('SIGTERM', () => {
  queue = queue.then(() => finish(drainTimeoutMs))
})
process.on('unhandledRejection', (reason, promise) => {
  // A script's dropped promise rejection must not end the worker (scripts.md §5).
  if (worker?.handleUnhandledRejection(reason, promise) !== true) throw reason
})
send({ kind: 'hello' })

async function apply(message: ToWorker): Promise<void> {
  switch (message.kind) {
    case 'init':
      if (worker !== null) return
      drainTimeoutMs = message.config.proxy.drain_timeout * 1000
      log = createAppLogger({
        level: message.config.log.level,
        pretty: message.config.log.pretty,
        bindings: { role: 'worker', worker: message.slot },
      })
      worker = await ProxyWorker.create({
        slot: message.slot,
        workerCount: message.workerCount,
        config: message.config,
        log,
        send: (update) => void send(update),
      })
      return
    case 'drain':
      return finish(message.deadlineMs)
    case 'exit':
      // Handled as it arrives, before the queue (above); listed so the switch stays exhaustive for assertNever.
      return
    case 'config':
      // A SIGTERM sent to this worker alone drains with the reloaded timeout.
      drainTimeoutMs = message.config.proxy.drain_timeout * 1000
      // A reload that fails here must not stop the queue: later diffs, health and drain still have to apply.
      try {
        await worker?.handle(message)
      } catch (err) {
        log?.error({ err }, `SIGHUP reload failed in this worker; it keeps its previous options: ${(err as Error).message}`)
      }
      return
    case 'state.full':
    case 'state.diff':
    case 'health':
    case 'addresses':
    case 'ping':
    case 'logs.reopen':
      if (worker === null) return
      try {
        await worker.handle(message)
      } catch (err) {
        // Only a listen error gets here: the worker cannot serve, so it says why and exits for the primary to decide.
        const { code, message: text } = err as { code?: string; message?: string }
        log?.error({ err }, 'worker cannot serve')
        await send({ kind: 'start.failed', code: code ?? 'WORKER_START_FAILED', message: text ?? String(err) })
        process.exit(1)
      }
      return
    default:
      assertNever(message)
  }
}

async function finish(deadlineMs: number): Promise<void> {
  const cut = worker === null ? 0 : await worker.drain(deadlineMs)
  // A connection the primary's round-robin sent before it saw our listeners close may still be on the channel; it is
  // refused (and handed to another worker) only while this process lives, so wait for the primary's `exit`.
  const answered = new Promise<void>((resolve) => {
    onExitAnswer = resolve
    setTimeout(resolve, EXIT_ANSWER_TIMEOUT_MS).unref()
  })
  await send({ kind: 'drained', cut })
  if (process.connected) await answered
  process.exit(0)
}

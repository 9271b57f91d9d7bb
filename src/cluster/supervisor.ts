/** The primary's side of the proxy workers (README "Process model"): forks one worker per slot through node:cluster
 *  (they share the proxy and stream ports), gives each the full state once the startup config is loaded, delivers
 *  every later diff and broadcast to the workers that hold a state, restarts a worker that dies (`nextRestart`),
 *  pings them for `/status` `config_timer`, keeps what they report (feedback goes on to checkups, figures to
 *  ClusterStats, script load errors for GET /lua and /js), and drains them on shutdown. A SIGHUP reload reaches the
 *  workers through `reconfigure` (in place) or `roll` (a new generation; the old one drains once it is ready). Owns the
 *  worker processes; what the state is comes from state-feed.ts.
 *
 *  Connections are spread by Node's default scheduling (round-robin from this process on Linux), which balances
 *  keep-alive clients evenly. Its one weakness: a connection being handed to a worker at the instant the worker is
 *  killed stays open, unanswered, until the client gives up (a Node limitation). `NODE_CLUSTER_SCHED_POLICY=none`
 *  (Node's own switch) lets the kernel spread connections instead: no such hang, but keep-alive bursts can land
 *  almost all on one worker (measured: 2955 of 3000 requests over 64 connections). */

import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import type { FeedbackReport } from '../checkups/index.js'
import type { Config } from '../config/index.js'
import type { Logger } from '../log.js'
import type { ScriptLoadError, ScriptRuntimeName } from '../scripts/index.js'
import { assertNever, type FromWorker, type FullState, isMessage, type ListenAddress, type ToWorker } from './messages.js'
import { LINEAR_REGEXP_FALLBACK_FLAG } from './regexp-fallback.js'
import { ClusterStats } from './stats.js'

const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.js', import.meta.url))
/** A worker that dies younger than this counts as crash-looping: its next restart waits. */
const QUICK_DEATH_MS = 10_000
const FIRST_RESTART_DELAY_MS = 500
const MAX_RESTART_DELAY_MS = 30_000

/** The restart rate bound: a death after a healthy life restarts at once (a kill, an OOM), and so does the first
 *  young death; each further young death in a row doubles the wait, from 0.5 s up to 30 s, so a worker that cannot
 *  run (a broken script runtime, a port taken after start) costs a fork every 30 s, not a busy loop. */
export function nextRestart(quickDeaths: number, livedMs: number): { readonly quickDeaths: number; readonly delayMs: number } {
  const count = livedMs < QUICK_DEATH_MS ? quickDeaths + 1 : 0
  const delayMs = count <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (count - 2))
  return { quickDeaths: count, delayMs }
}
/** Time a worker gets on top of `drain_timeout` to report and exit before it is killed. */
const DRAIN_MARGIN_MS = 5_000
/** A rolled generation that is not ready within this long is given up; the running workers keep serving. */
const ROLL_READY_TIMEOUT_MS = 60_000

/** Where a worker is in its conversation (messages.ts). */
type Phase = 'forked' | 'hello' | 'synced' | 'ready'

/** `serving`: the generation that counts for readiness and is restarted on death. `incoming`: a roll's new generation
 *  until all of it is ready. `retiring`: the generation a roll replaced, draining; never restarted. */
type Role = 'serving' | 'incoming' | 'retiring'

interface Slot {
  readonly index: number
  /** Unique across generations: the key of this slot's figures in ClusterStats. */
  readonly statsKey: number
  /** The size of the slot's generation (`init.workerCount`). */
  readonly workerCount: number
  /** What the slot's worker gets in `init`; a reload in place replaces it, so a restart gets the reloaded one. */
  config: Config
  role: Role
  worker: Worker | null
  phase: Phase
  startedAtMs: number
  /** Last ready or pong, for config_timer. */
  lastAnswerMs: number | null
  /** Consecutive deaths younger than QUICK_DEATH_MS. */
  quickDeaths: number
  restartTimer: NodeJS.Timeout | null
  scriptErrors: { readonly lua: readonly ScriptLoadError[]; readonly js: readonly ScriptLoadError[] }
  cut: number
  listening: { proxy: readonly ListenAddress[]; stream: readonly ListenAddress[] } | null
}

/** How a roll ended: on failure the previous workers keep serving and `reason` says why. */
export type RollResult = { readonly ok: true } | { readonly ok: false; readonly reason: string }

export interface SupervisorOptions {
  readonly config: Config
  readonly workerCount: number
  readonly log: Logger
  /** The state for a worker that starts or resyncs (StateFeed.fullState). */
  readonly fullState: () => FullState
  /** One passive-health report of a worker, in arrival order (CheckupsPrimary.report). */
  readonly onFeedback: (report: FeedbackReport) => void
  /** A worker's script read this dynamic-config key (Primary.readDynamicConfig, for its refresh side effect). */
  readonly onConfigRead: (key: string) => void
}

/** Why the workers could not start; the CLI prints the message after `fatal: `. */
export class WorkerStartError extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
    this.name = 'WorkerStartError'
  }
}

export class Supervisor {
  readonly stats = new ClusterStats()
  readonly #options: SupervisorOptions
  readonly #log: Logger
  /** The serving generation. */
  #slots: Slot[]
  /** A roll's new generation while it starts; empty otherwise. */
  #incoming: Slot[] = []
  /** Replaced generations still draining. */
  readonly #retiring = new Set<Slot>()
  #settleRoll: ((result: RollResult) => void) | null = null
  #nextStatsKey = 0
  readonly #pingIntervalMs: number
  readonly #pingOvertimeMs: number
  #pingTimer: NodeJS.Timeout | null = null
  #pingSeq = 0
  #isStateReleased = false
  #isShuttingDown = false
  #addresses: { proxy: readonly ListenAddress[]; stream: readonly ListenAddress[] } | null = null
  /** Settles when every worker is ready for the first time, or the first one fails to start. */
  readonly #started: Promise<void>
  #settleStart: { resolve: () => void; reject: (err: WorkerStartError) => void } | null = null
  #onAllExited: (() => void) | null = null

  constructor(options: SupervisorOptions) {
    this.#options = options
    this.#log = options.log
    this.#pingIntervalMs = options.config.global.checkup_timer_interval * 1000
    this.#pingOvertimeMs = options.config.global.checkup_timer_overtime * 1000
    this.#slots = this.#newGeneration(options.config, options.workerCount, 'serving')
    this.#started = new Promise((resolve, reject) => {
      this.#settleStart = { resolve, reject }
    })
    // Nobody may be waiting yet; the rejection is still delivered to whoever awaits `started()`.
    this.#started.catch(() => undefined)
  }

  get workerCount(): number {
    return this.#slots.length
  }

  /** Workers that applied the current state and are listening. */
  get readyCount(): number {
    return this.#slots.filter((slot) => slot.phase === 'ready').length
  }

  /** The listeners of the serving generation's first worker that became ready (all workers share them). */
  get addresses(): { proxy: readonly ListenAddress[]; stream: readonly ListenAddress[] } | null {
    return this.#addresses
  }

  /** Forks every worker. They boot while the primary loads the config; `releaseState` lets them have it. */
  start(): void {
    // 'advanced' (structured clone) keeps what JSON would not: dynamic-config values parsed from JSON5 may hold
    // Infinity or NaN. Workers get everything over IPC, never from the command line.
    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], execArgv: [...process.execArgv, LINEAR_REGEXP_FALLBACK_FLAG], serialization: 'advanced' })
    for (const slot of this.#slots) this.#fork(slot)
    this.#pingTimer = setInterval(() => this.#ping(), this.#pingIntervalMs)
    this.#pingTimer.unref()
  }

  /** The startup config is loaded: every worker that said hello gets it now, later ones when they do. */
  releaseState(): void {
    this.#isStateReleased = true
    for (const slot of this.#slots) if (slot.phase === 'hello') this.#sendState(slot, true)
  }

  /** Resolves when every worker is listening; rejects with the first worker's start failure. */
  started(): Promise<void> {
    return this.#started
  }

  /** A diff or broadcast (StateFeed), for every worker that already holds a state; the others get it with theirs. */
  broadcast(message: ToWorker): void {
    for (const slot of this.#allSlots()) {
      if (slot.phase === 'synced' || slot.phase === 'ready') this.#send(slot, message)
    }
  }

  /** `/status` `config_timer` (upstreams.md §6): alive = channel connected and a ping answered within the overtime. */
  configTimer(nowMs: number = Date.now()): Record<string, 'alive' | 'dead'> {
    const timer: Record<string, 'alive' | 'dead'> = {}
    for (const slot of this.#slots) {
      const isAlive = slot.worker?.isConnected() === true && slot.phase === 'ready' &&
        slot.lastAnswerMs !== null && nowMs - slot.lastAnswerMs <= this.#pingOvertimeMs
      timer[`worker-${slot.index}`] = isAlive ? 'alive' : 'dead'
    }
    return timer
  }

  /** Load errors the workers report now for `runtime`, one entry per script version and message. */
  scriptLoadErrors(runtime: ScriptRuntimeName): ScriptLoadError[] {
    const seen = new Map<string, ScriptLoadError>()
    for (const slot of this.#slots) {
      for (const error of slot.scriptErrors[runtime]) {
        const key = `${error.name}\n${error.version}\n${error.message}`
        const earlier = seen.get(key)
        if (earlier === undefined || earlier.timeMs > error.timeMs) seen.set(key, error)
      }
    }
    return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** proxy.md §10 for every worker: each drains until `drainTimeoutMs`; one still running `DRAIN_MARGIN_MS` later
   *  is killed. Resolves with the connections the workers cut (each worker logs its own). No restarts from here on. */
  async drain(drainTimeoutMs: number): Promise<number> {
    this.#isShuttingDown = true
    this.#stopTimers()
    this.#settleStart?.reject(new WorkerStartError('WORKER_START_FAILED', 'shutting down before the workers were ready'))
    this.#settleStart = null
    this.#settleRoll?.({ ok: false, reason: 'shutting down' })
    this.#settleRoll = null
    const running = this.#allSlots().filter((slot) => slot.worker !== null)
    if (running.length === 0) return 0
    const allExited = new Promise<void>((resolve) => {
      this.#onAllExited = resolve
    })
    for (const slot of running) {
      // A worker without a state has nothing in flight; one that has not said hello might not hear a drain.
      if (slot.phase === 'synced' || slot.phase === 'ready') this.#send(slot, { kind: 'drain', deadlineMs: drainTimeoutMs })
      else slot.worker?.process.kill('SIGKILL')
    }
    let deadline: NodeJS.Timeout | null = null
    const isInTime = await Promise.race([
      allExited.then(() => true),
      new Promise<boolean>((resolve) => {
        deadline = setTimeout(() => resolve(false), drainTimeoutMs + DRAIN_MARGIN_MS)
      }),
    ])
    if (deadline !== null) clearTimeout(deadline)
    if (!isInTime) {
      const late = this.#allSlots().filter((slot) => slot.worker !== null)
      this.#log.warn({ workers: late.map((slot) => slot.index) }, `${late.length} worker(s) still running ${DRAIN_MARGIN_MS} ms after drain_timeout: killing them`)
      for (const slot of late) slot.worker?.process.kill('SIGKILL')
      await allExited
    }
    return this.#allSlots().reduce((sum, slot) => sum + slot.cut, 0)
  }

  /** Startup failed elsewhere: end every worker now, nothing to drain. */
  async kill(): Promise<void> {
    this.#isShuttingDown = true
    this.#stopTimers()
    const running = this.#allSlots().filter((slot) => slot.worker !== null)
    if (running.length === 0) return
    const allExited = new Promise<void>((resolve) => {
      this.#onAllExited = resolve
    })
    for (const slot of running) slot.worker?.process.kill('SIGKILL')
    await allExited
  }

  /** SIGHUP reload in place: every worker swaps to `config` now, and a worker that starts later (a restart) gets it in
   *  `init`. Listeners and the worker count stay (those roll). */
  reconfigure(config: Config): void {
    for (const slot of this.#slots) slot.config = config
    this.broadcast({ kind: 'config', config })
  }

  /** SIGHUP reload of listeners or the worker count (proxy.md §10): forks `workerCount` new workers with `config`; once
   *  every one of them holds the state and listens, they become the serving generation and the previous workers drain
   *  as for SIGTERM (their accepted requests finish; they exit without restart). If a new worker cannot start, or not
   *  within ROLL_READY_TIMEOUT_MS, the new ones are killed and the previous ones keep serving. */
  async roll(config: Config, workerCount: number): Promise<RollResult> {
    if (this.#isShuttingDown) return { ok: false, reason: 'shutting down' }
    if (this.#incoming.length > 0) return { ok: false, reason: 'another roll is under way' }
    const incoming = this.#newGeneration(config, workerCount, 'incoming')
    this.#incoming = incoming
    let deadline: NodeJS.Timeout | null = null
    const result = await new Promise<RollResult>((resolve) => {
      this.#settleRoll = resolve
      deadline = setTimeout(() => resolve({ ok: false, reason: `the new workers were not ready within ${ROLL_READY_TIMEOUT_MS} ms` }), ROLL_READY_TIMEOUT_MS)
      for (const slot of incoming) this.#fork(slot)
    })
    if (deadline !== null) clearTimeout(deadline)
    this.#settleRoll = null
    this.#incoming = []
    if (!result.ok || this.#isShuttingDown) {
      // The new workers are cut loose first, so their exits neither restart them nor count as the serving ones'.
      for (const slot of incoming) {
        slot.role = 'retiring'
        // A slot whose worker already exited has no exit left to remove it from the set.
        if (slot.worker === null) continue
        this.#retiring.add(slot)
        slot.worker.process.kill('SIGKILL')
      }
      return result.ok ? { ok: false, reason: 'shutting down' } : result
    }
    const previous = this.#slots
    for (const slot of incoming) slot.role = 'serving'
    this.#slots = incoming
    this.#addresses = incoming.find((slot) => slot.listening !== null)?.listening ?? this.#addresses
    const drainMs = config.proxy.drain_timeout * 1000
    for (const slot of previous) this.#retire(slot, drainMs)
    return { ok: true }
  }

  #newGeneration(config: Config, workerCount: number, role: Role): Slot[] {
    return Array.from({ length: workerCount }, (_, index) => ({
      index, statsKey: this.#nextStatsKey++, workerCount, config, role, worker: null, phase: 'forked' as Phase,
      startedAtMs: 0, lastAnswerMs: null, quickDeaths: 0, restartTimer: null, scriptErrors: { lua: [], js: [] }, cut: 0,
      listening: null,
    }))
  }

  /** A replaced worker drains as for SIGTERM; one still running DRAIN_MARGIN_MS after the deadline is killed. */
  #retire(slot: Slot, drainMs: number): void {
    slot.role = 'retiring'
    if (slot.restartTimer !== null) clearTimeout(slot.restartTimer)
    slot.restartTimer = null
    const worker = slot.worker
    if (worker === null) return
    this.#retiring.add(slot)
    // A worker without a state has nothing in flight; one that has not said hello might not hear a drain.
    if (slot.phase === 'synced' || slot.phase === 'ready') this.#send(slot, { kind: 'drain', deadlineMs: drainMs })
    else worker.process.kill('SIGKILL')
    const killTimer = setTimeout(() => {
      if (slot.worker === worker) {
        this.#log.warn({ worker: slot.index, pid: worker.process.pid }, `replaced worker still running ${DRAIN_MARGIN_MS} ms after drain_timeout: killing it`)
        worker.process.kill('SIGKILL')
      }
    }, drainMs + DRAIN_MARGIN_MS)
    killTimer.unref()
  }

  /** Every slot with a process or a pending restart: serving, incoming and retiring generations. */
  #allSlots(): Slot[] {
    return [...this.#slots, ...this.#incoming, ...this.#retiring]
  }

  #fork(slot: Slot): void {
    slot.restartTimer = null
    slot.phase = 'forked'
    slot.lastAnswerMs = null
    slot.startedAtMs = Date.now()
    slot.cut = 0
    const worker = cluster.fork()
    slot.worker = worker
    worker.on('message', (message: unknown) => {
      if (isMessage(message)) this.#onMessage(slot, worker, message as FromWorker)
    })
    // A send racing the worker's death fails asynchronously; the exit handler does what is needed.
    worker.on('error', (err: Error) => this.#log.debug({ err, worker: slot.index }, 'worker channel error'))
    worker.on('exit', (code: number | null, signal: string | null) => this.#onExit(slot, worker, code, signal))
    this.#log.debug({ worker: slot.index, pid: worker.process.pid }, 'worker forked')
  }

  #onMessage(slot: Slot, worker: Worker, message: FromWorker): void {
    if (slot.worker !== worker) return
    switch (message.kind) {
      case 'hello':
        slot.phase = 'hello'
        if (this.#isStateReleased && !this.#isShuttingDown) this.#sendState(slot, true)
        return
      case 'ready':
        slot.phase = 'ready'
        slot.lastAnswerMs = Date.now()
        slot.listening = { proxy: message.proxy, stream: message.stream }
        this.#log.info({ worker: slot.index, pid: worker.process.pid, version: message.version }, 'worker ready')
        if (slot.role === 'incoming') {
          if (this.#incoming.every((other) => other.phase === 'ready')) this.#settleRoll?.({ ok: true })
          return
        }
        this.#addresses ??= slot.listening
        if (this.readyCount === this.#slots.length) {
          this.#settleStart?.resolve()
          this.#settleStart = null
        }
        return
      case 'start.failed':
        this.#log.error({ worker: slot.index, code: message.code }, `worker ${slot.index} cannot serve: ${message.message}`)
        if (slot.role === 'incoming') {
          this.#settleRoll?.({ ok: false, reason: `new worker ${slot.index} cannot serve: ${message.message}` })
          return
        }
        this.#settleStart?.reject(new WorkerStartError(message.code, message.message))
        this.#settleStart = null
        return
      case 'resync':
        this.#sendState(slot, false)
        return
      case 'feedback':
        for (const report of message.reports) this.#options.onFeedback(report)
        return
      case 'script.errors':
        slot.scriptErrors = { lua: message.lua, js: message.js }
        return
      case 'stats':
        this.stats.update(slot.statsKey, slot.index, message.stats)
        return
      case 'config.reads':
        for (const key of message.keys) this.#options.onConfigRead(key)
        return
      case 'pong':
        slot.lastAnswerMs = Date.now()
        return
      case 'drained':
        slot.cut = message.cut
        this.#send(slot, { kind: 'exit' })
        return
      default:
        assertNever(message)
    }
  }

  #sendState(slot: Slot, withInit: boolean): void {
    if (withInit) this.#send(slot, { kind: 'init', slot: slot.index, workerCount: slot.workerCount, config: slot.config })
    this.#send(slot, { kind: 'state.full', state: this.#options.fullState() })
    if (slot.phase !== 'ready') slot.phase = 'synced'
  }

  #onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return
    slot.worker = null
    const wasReady = slot.phase === 'ready'
    this.stats.retire(slot.statsKey)
    if (this.#isShuttingDown) {
      this.#retiring.delete(slot)
      if (this.#allSlots().every((other) => other.worker === null)) this.#onAllExited?.()
      return
    }
    const how = signal === null ? `exit code ${code}` : `signal ${signal}`
    if (slot.role === 'retiring') {
      this.#retiring.delete(slot)
      this.#log.info({ worker: slot.index, pid: worker.process.pid, code, signal }, `replaced worker ${slot.index} exited (${how})`)
      return
    }
    if (slot.role === 'incoming') {
      this.#settleRoll?.({ ok: false, reason: `new worker ${slot.index} exited while starting (${how}); see its log lines above` })
      return
    }
    if (this.#settleStart !== null && !wasReady) {
      // During startup a dying worker is a start failure (a restart would most likely die the same way).
      this.#settleStart.reject(new WorkerStartError('WORKER_START_FAILED', `worker ${slot.index} exited during startup (${how}); see its log lines above`))
      this.#settleStart = null
      return
    }
    const livedMs = Date.now() - slot.startedAtMs
    const { quickDeaths, delayMs } = nextRestart(slot.quickDeaths, livedMs)
    slot.quickDeaths = quickDeaths
    const fields = { worker: slot.index, pid: worker.process.pid, code, signal, lived_ms: livedMs, restart_in_ms: delayMs }
    const text = `worker ${slot.index} died (${how}) after ${livedMs} ms; restarting${delayMs > 0 ? ` in ${delayMs} ms` : ''}`
    if (slot.quickDeaths > 1) this.#log.error(fields, text)
    else this.#log.warn(fields, text)
    slot.phase = 'forked'
    slot.restartTimer = setTimeout(() => this.#fork(slot), delayMs)
  }

  #ping(): void {
    this.#pingSeq += 1
    for (const slot of this.#slots) if (slot.phase === 'ready') this.#send(slot, { kind: 'ping', seq: this.#pingSeq })
  }

  #send(slot: Slot, message: ToWorker): void {
    if (slot.worker?.isConnected() === true) slot.worker.send(message)
  }

  #stopTimers(): void {
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer)
    this.#pingTimer = null
    for (const slot of this.#slots) {
      if (slot.restartTimer !== null) clearTimeout(slot.restartTimer)
      slot.restartTimer = null
    }
  }
}

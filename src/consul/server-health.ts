/** The Consul servers' own health, `cls:consul` in `/status` (consul.md §9): every `checkup_timer_interval`, each
 *  configured server gets `GET /v1/status/leader` through its `consul` client. Owns the per-server record (status,
 *  consecutive failures, last change, message, leader) and the tick; it calls `onTick` after each round so the watch's
 *  index probe (§4) rides on the same timer. Kept apart from the upstream heartbeat pool on purpose: Consul is not an
 *  upstream and its checks must not wait behind 1 024 probes. */

import { formatLocalTime } from '../checkups/index.js'
import type { ConsulEndpoint } from './client.js'
import type { Clock } from './watch-rules.js'

export type ConsulServerStatus = 'unchecked' | 'ok' | 'unstable' | 'err'

/** One server object of `cls:consul`, in the document's field order. */
export type ConsulServerStatusJson = {
  readonly server: string
  readonly status: ConsulServerStatus
  readonly fail_num: number
  readonly lastmodified: string
  readonly msg: string | null
  readonly leader: string | null
}

export interface ServerHealthOptions {
  readonly endpoints: readonly ConsulEndpoint[]
  /** `global.checkup_timer_interval` */
  readonly intervalSec: number
  /** `consul.timeout`, bound on each leader request. */
  readonly timeoutSec: number
  readonly clock: Clock
  /** Runs after each round (the index probe); its failure is the caller's to report. */
  readonly onTick?: () => Promise<void>
  /** A server changed status (log it). */
  readonly onChange?: (server: string, status: ConsulServerStatus, msg: string | null) => void
}

interface ServerRecord {
  readonly endpoint: ConsulEndpoint
  status: ConsulServerStatus
  failNum: number
  lastModifiedMs: number
  msg: string | null
  leader: string | null
}

type LeaderAnswer = { readonly status: 'ok' | 'unstable' | 'err'; readonly leader: string | null; readonly msg: string | null }

export class ConsulServerHealth {
  readonly #options: ServerHealthOptions
  readonly #records: ServerRecord[]
  #timer: NodeJS.Timeout | null = null
  #round: Promise<void> | null = null
  #isRunning = false

  constructor(options: ServerHealthOptions) {
    this.#options = options
    const nowMs = options.clock.nowMs()
    this.#records = options.endpoints.map((endpoint) => ({
      endpoint,
      status: 'unchecked',
      failNum: 0,
      lastModifiedMs: nowMs,
      msg: null,
      leader: null,
    }))
  }

  /** Checks at once, then every interval (measured from round start, like the heartbeat). */
  start(): void {
    if (this.#isRunning) return
    this.#isRunning = true
    this.#runRound()
  }

  async stop(): Promise<void> {
    this.#isRunning = false
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    await this.#round
  }

  /** `cls:consul`: one level holding every configured server, in config order. */
  status(): ConsulServerStatusJson[][] {
    return [
      this.#records.map((record) => ({
        server: `consul:${record.endpoint.name}`,
        status: record.status,
        fail_num: record.failNum,
        lastmodified: formatLocalTime(record.lastModifiedMs),
        msg: record.msg,
        leader: record.leader,
      })),
    ]
  }

  /** `slardar_consul_server_up{server}`: each configured server (`host:port`) and whether its last check was ok. */
  upStates(): { readonly server: string; readonly isUp: boolean }[] {
    return this.#records.map((record) => ({ server: record.endpoint.name, isUp: record.status === 'ok' }))
  }

  /** The leader reported by `server` (`host:port`) at its last check, or null. */
  leaderOf(server: string): string | null {
    return this.#records.find((record) => record.endpoint.name === server)?.leader ?? null
  }

  #runRound(): void {
    const startedMs = this.#options.clock.nowMs()
    this.#round = this.#check().then(() => {
      if (!this.#isRunning) return
      const elapsedMs = this.#options.clock.nowMs() - startedMs
      this.#timer = setTimeout(() => this.#runRound(), Math.max(0, this.#options.intervalSec * 1000 - elapsedMs))
      this.#timer.unref()
    })
  }

  async #check(): Promise<void> {
    const answers = await Promise.all(this.#records.map((record) => askLeader(record.endpoint, this.#options.timeoutSec * 1000)))
    const nowMs = this.#options.clock.nowMs()
    answers.forEach((answer, i) => this.#record(this.#records[i] as ServerRecord, answer, nowMs))
    // A throwing hook must not end the schedule; reporting its failure is the hook's own job.
    if (this.#isRunning) await this.#options.onTick?.().catch(() => undefined)
  }

  #record(record: ServerRecord, answer: LeaderAnswer, nowMs: number): void {
    // "No leader" is as much a failure to serve reads as a refused connection.
    record.failNum = answer.status === 'ok' ? 0 : record.failNum + 1
    record.leader = answer.leader
    record.msg = answer.msg
    if (record.status === answer.status) return
    record.status = answer.status
    record.lastModifiedMs = nowMs
    this.#options.onChange?.(record.endpoint.name, answer.status, answer.msg)
  }
}

async function askLeader(endpoint: ConsulEndpoint, timeoutMs: number): Promise<LeaderAnswer> {
  try {
    // The client's typings omit `timeout`, which its request layer honours (as in client.ts).
    const status = endpoint.client.status as unknown as { leader(options: Record<string, unknown>): Promise<unknown> }
    const leader = await status.leader({ timeout: timeoutMs })
    // Consul answers 200 `""` without a leader; the client hands that over as undefined.
    if (leader === undefined || leader === '') return { status: 'unstable', leader: null, msg: 'no leader' }
    if (typeof leader !== 'string') return { status: 'err', leader: null, msg: 'unexpected answer from /v1/status/leader' }
    return { status: 'ok', leader, msg: null }
  } catch (err) {
    return { status: 'err', leader: null, msg: describeFailure(err) }
  }
}

/** The client's errors carry Consul's text or the socket error; the message is what /status shows. */
function describeFailure(err: unknown): string {
  const e = err as { isTimeout?: boolean; statusCode?: number; message?: string }
  if (e.isTimeout === true) return 'timeout'
  if (typeof e.statusCode === 'number') return `status ${e.statusCode}: ${e.message ?? ''}`.trimEnd()
  return e.message ?? String(err)
}

/** Active health checks (upstreams.md §5.1, §5.2): real probes over TCP, and the round scheduler. The only file of
 *  checkups that opens sockets. Runs in the primary only. Owns probe sockets, the probe p-limit (shared with the
 *  resolver), round timing and immediate probes. Leaves status transitions to heartbeat-state.ts, and broadcasting
 *  the changes it reports through `onChanges` to the owner (cluster).
 *  Fixed here, compared with Slardar: concurrent bounded probes with rounds timed from their start, new servers
 *  probed at once, and HTTP probe sockets closed, never pooled (upstreams.md §7 items 10, 12, 13). */
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import pLimit from 'p-limit'
import type { LimitFunction } from 'p-limit'
import { UnresolvedHostError } from './errors.js'
import { nextRoundStartMs, ProbeBatch } from './heartbeat-state.js'
import { systemClock } from './model.js'
import type { Clock, HealthChange, Peer, Upstream, UpstreamDefinition } from './model.js'
import type { ApplyReport, UpstreamTable } from './table.js'

export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly msg: string }

/** How one upstream's servers are probed, compiled once per definition. */
export interface ProbeSpec {
  readonly timeoutMs: number
  /** The bytes to send after connecting, or null for a connect-only check. */
  readonly request: ((peer: Peer) => string) | null
  /** Health of a parsed status code; only used when `request` is set. */
  readonly isHealthy: (status: number) => boolean
}

const OK: ProbeResult = Object.freeze({ ok: true })
/** A status line longer than this without a line end is not one. */
const MAX_STATUS_LINE_BYTES = 1024
const STATUS_LINE = /^HTTP\/\d\.\d (\d{3})(?: |$)/
const DEFAULT_EXPECT: readonly string[] = ['2xx', '3xx']

const specs = new WeakMap<UpstreamDefinition, ProbeSpec>()

/** §1.2 `http_opts` rules: `query` is sent verbatim and any parseable status is healthy unless a rule says
 *  otherwise; `path` sends a built request with `expect` `["2xx","3xx"]` by default; neither is connect-only, as in
 *  Slardar. `tcp` is `general`; `redis`/`mysql` are probed as `general` (§7.18). */
export function compileProbeSpec(definition: UpstreamDefinition): ProbeSpec {
  const cached = specs.get(definition)
  if (cached !== undefined) return cached
  const timeoutMs = definition.timeout * 1000
  const opts = definition.http_opts
  let spec: ProbeSpec
  if (definition.typ !== 'http' || opts === null || (opts.query === null && opts.path === null)) {
    spec = { timeoutMs, request: null, isHealthy: () => true }
  } else {
    const query = opts.query
    const isHealthy = opts.statuses !== null
      ? statusesRule(opts.statuses)
      : expectRule(opts.expect ?? (query !== null ? null : DEFAULT_EXPECT))
    const request = query !== null ? () => query : buildRequest(opts.method, opts.path!, opts.headers)
    spec = { timeoutMs, request, isHealthy }
  }
  specs.set(definition, spec)
  return spec
}

function statusesRule(statuses: Readonly<Record<string, boolean>>): (status: number) => boolean {
  return (status) => statuses[String(status)] !== false
}

function expectRule(expect: readonly (number | string)[] | null): (status: number) => boolean {
  if (expect === null) return () => true
  const codes = new Set(expect.filter((e): e is number => typeof e === 'number'))
  const classes = new Set(expect.filter((e): e is string => typeof e === 'string').map((c) => Number(c[0])))
  return (status) => codes.has(status) || classes.has(Math.floor(status / 100))
}

/** `<method> <path> HTTP/1.1`, `Host: <host>[:<port>]`, `Connection: close`, then `headers`, which override. */
function buildRequest(method: string, path: string, headers: Readonly<Record<string, string>>): (peer: Peer) => string {
  return (peer) => {
    const host = peer.port === 80 ? peer.id.slice(0, -3) : peer.id
    const fields = new Map<string, string>([['host', `Host: ${host}`], ['connection', 'Connection: close']])
    for (const [name, value] of Object.entries(headers)) fields.set(name.toLowerCase(), `${name}: ${value}`)
    return `${method} ${path} HTTP/1.1\r\n${[...fields.values()].join('\r\n')}\r\n\r\n`
  }
}

/** One probe, bounded as a whole by `spec.timeoutMs` (connect, send and status line). The socket is always
 *  destroyed afterwards. `sockets` tracks open probe sockets so the owner can cut them on stop. */
export function probeOnce(peer: Peer, spec: ProbeSpec, sockets?: Set<Socket>): Promise<ProbeResult> {
  if (peer.address === null) {
    const msg = peer.resolveError ?? new UnresolvedHostError(peer.host, 'not resolved yet').message
    return Promise.resolve({ ok: false, msg })
  }
  const address = peer.address
  return new Promise((resolve) => {
    const socket = connect({ host: address, port: peer.port })
    sockets?.add(socket)
    let head = ''
    let isDone = false
    const finish = (result: ProbeResult): void => {
      if (isDone) return
      isDone = true
      clearTimeout(timer)
      sockets?.delete(socket)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => finish({ ok: false, msg: 'timeout' }), spec.timeoutMs)
    socket.once('connect', () => {
      if (spec.request === null) finish(OK)
      else socket.write(spec.request(peer))
    })
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1')
      const eol = head.indexOf('\n')
      if (eol >= 0) finish(statusLineResult(head.slice(0, eol), spec))
      else if (head.length > MAX_STATUS_LINE_BYTES) finish({ ok: false, msg: 'bad status line' })
    })
    // A peer that closes after a partial line without a line end still gets its line judged.
    socket.once('end', () => finish(head.length > 0 ? statusLineResult(head, spec) : { ok: false, msg: 'closed' }))
    socket.once('error', (err: NodeJS.ErrnoException) => finish({ ok: false, msg: probeErrorMessage(err) }))
    socket.once('close', () => finish({ ok: false, msg: 'closed' }))
  })
}

function statusLineResult(line: string, spec: ProbeSpec): ProbeResult {
  const match = STATUS_LINE.exec(line.endsWith('\r') ? line.slice(0, -1) : line)
  const status = match === null ? 0 : Number(match[1])
  if (status < 100 || status > 599) return { ok: false, msg: 'bad status line' }
  return spec.isHealthy(status) ? OK : { ok: false, msg: `bad status code: ${status}` }
}

/** §5.2 wording for socket errors; anything else is shown as its Node error code. */
export function probeErrorMessage(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused'
    case 'ECONNRESET': return 'connection reset by peer'
    case 'EHOSTUNREACH': return 'no route to host'
    case 'ENETUNREACH': return 'network is unreachable'
    case 'ETIMEDOUT': return 'timeout'
    default: return err.code ?? err.message
  }
}

export interface HeartbeatOptions {
  readonly table: UpstreamTable
  /** `global.checkup_timer_interval`: seconds between round starts. */
  readonly intervalSec: number
  /** `global.checkup_timer_overtime`: `checkup_timer_alive` turns false when no round ended for this long. */
  readonly overtimeSec: number
  /** `global.heartbeat_concurrency`: probes (sockets) in flight at once, rounds and immediate probes together. */
  readonly concurrency: number
  readonly clock?: Clock
  /** Status changes to broadcast to workers; called as results arrive. Must not throw. */
  readonly onChanges: (changes: readonly HealthChange[]) => void
  /** Each completed round (for metrics such as `heartbeat_round_seconds`). */
  readonly onRoundEnd?: (round: HeartbeatRound) => void
  /** A throw from a callback above lands here (default: dropped), so the loop itself never dies (§7.14). */
  readonly onError?: (err: unknown) => void
}

export interface HeartbeatRound {
  readonly startMs: number
  readonly endMs: number
  readonly probes: number
}

/** The primary's heartbeat loop. `start()` when the first config is loaded; `probeApplied(report)` after every
 *  later install; `stop()` on shutdown. */
export class Heartbeat {
  /** The probe limiter; the resolver shares it so DNS work is bounded by the same budget (§1.5). */
  readonly limit: LimitFunction
  readonly #options: HeartbeatOptions
  readonly #clock: Clock
  readonly #sockets = new Set<Socket>()
  readonly #inFlight = new Set<Promise<void>>()
  #timer: NodeJS.Timeout | null = null
  #startedAtMs: number | null = null
  #isStopped = false
  #lastRound: HeartbeatRound | null = null

  constructor(options: HeartbeatOptions) {
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.limit = pLimit({ concurrency: options.concurrency, rejectOnClear: true })
  }

  /** End of the last completed round, for `/status` `last_check_time`. */
  get lastCheckTimeMs(): number | null {
    return this.#lastRound?.endMs ?? null
  }

  /** `/status` `checkup_timer_alive`: the last round ended less than `overtimeSec` ago. Before the first round
   *  ends, the loop counts as alive for `overtimeSec` after `start()`. */
  isAlive(nowMs: number = this.#clock.nowMs()): boolean {
    if (this.#isStopped || this.#startedAtMs === null) return false
    const overtimeMs = this.#options.overtimeSec * 1000
    return nowMs - (this.#lastRound?.endMs ?? this.#startedAtMs) < overtimeMs
  }

  /** Starts the first round now. Later calls do nothing. */
  start(): void {
    if (this.#startedAtMs !== null || this.#isStopped) return
    this.#startedAtMs = this.#clock.nowMs()
    this.#runRound()
  }

  /** Immediate probes after an install (§5.1): every added server, and every server of an upstream whose probe
   *  settings changed; each upstream's share is one batch. Before `start()` the first round covers them. */
  probeApplied(report: ApplyReport): void {
    if (this.#startedAtMs === null || this.#isStopped) return
    const addedByUpstream = new Map<string, Set<string>>()
    for (const ref of report.added) {
      let ids = addedByUpstream.get(ref.upstream)
      if (ids === undefined) addedByUpstream.set(ref.upstream, (ids = new Set()))
      ids.add(ref.peer)
    }
    const everyServer = new Set(report.reprobe)
    for (const name of new Set([...addedByUpstream.keys(), ...everyServer])) {
      const upstream = this.#options.table.get(name)
      if (upstream === undefined || !upstream.definition.enable) continue
      const ids = addedByUpstream.get(name)
      const peers = everyServer.has(name) ? upstream.peers : upstream.peers.filter((p) => ids?.has(p.id) === true)
      if (peers.length > 0) this.#track(this.#probeBatch(upstream, peers))
    }
  }

  /** Stops the loop: no new round, queued probes dropped, open probe sockets destroyed. Resolves when every probe
   *  has settled. */
  async stop(): Promise<void> {
    this.#isStopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.limit.clearQueue()
    for (const socket of this.#sockets) socket.destroy()
    await Promise.allSettled([...this.#inFlight])
  }

  #runRound(): void {
    if (this.#isStopped) return
    const startMs = this.#clock.nowMs()
    const batches: Promise<void>[] = []
    let probes = 0
    // The round's server list is fixed here, at its start (§5.1); `down` servers are probed too.
    for (const upstream of this.#options.table.upstreams()) {
      if (!upstream.definition.enable || upstream.peers.length === 0) continue
      batches.push(this.#probeBatch(upstream, upstream.peers))
      probes += upstream.peers.length
    }
    this.#track(Promise.allSettled(batches).then(() => {
      if (this.#isStopped) return
      const endMs = this.#clock.nowMs()
      const round: HeartbeatRound = { startMs, endMs, probes }
      this.#lastRound = round
      this.#notify(() => this.#options.onRoundEnd?.(round))
      const delayMs = Math.max(0, nextRoundStartMs(startMs, endMs, this.#options.intervalSec * 1000) - this.#clock.nowMs())
      // Unref'd: the primary's listeners keep the process alive; a forgotten heartbeat must not.
      this.#timer = setTimeout(() => this.#runRound(), delayMs).unref()
    }))
  }

  #probeBatch(upstream: Upstream, peers: readonly Peer[]): Promise<void> {
    const spec = compileProbeSpec(upstream.definition)
    const batch = new ProbeBatch(this.#options.table, upstream.name, peers.length)
    return Promise.all(peers.map((peer) => this.limit(() => this.#probe(batch, upstream.name, peer, spec))))
      .then(() => undefined)
  }

  async #probe(batch: ProbeBatch, upstream: string, peer: Peer, spec: ProbeSpec): Promise<void> {
    // Probe the peer installed now: an update since the round started may have re-pointed its address.
    const target = this.#options.table.findPeer(upstream, peer.id) ?? peer
    if (target.health.isRetired) {
      this.#emit(batch.skip(this.#clock.nowMs()))
      return
    }
    const result = await probeOnce(target, spec, this.#sockets)
    if (this.#isStopped) return
    const nowMs = this.#clock.nowMs()
    this.#emit(result.ok ? batch.success(target, nowMs) : batch.failure(target, result.msg, nowMs))
  }

  #emit(changes: readonly HealthChange[]): void {
    if (changes.length > 0) this.#notify(() => this.#options.onChanges(changes))
  }

  #notify(callback: () => void): void {
    try {
      callback()
    } catch (err) {
      this.#options.onError?.(err)
    }
  }

  /** Keeps a promise for `stop()`. Rejections only come from `clearQueue()` on stop and are expected. */
  #track(work: Promise<void>): void {
    const tracked = work.catch(() => undefined).finally(() => this.#inFlight.delete(tracked))
    this.#inFlight.add(tracked)
  }
}

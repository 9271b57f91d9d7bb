/** The upstream table of one process: compiles validated definitions into runtime upstreams (levels, peers, rings)
 *  and installs them, keeping what upstreams.md §0 says survives an update — health records by server id, WRR state
 *  by (level, id, weight), a level's ring while its (id, weight) list is unchanged, resolved addresses by hostname —
 *  and dropping the records of removed servers. Owns the records and addresses; writes to them come from the
 *  primary's heartbeat, passive health and resolver, or, in a worker, from the primary's broadcasts
 *  (`applyHealth`, `applyAddresses`). Leaves parsing to parse.ts and picking to levels.ts. */
import { isIP } from 'node:net'
import { UnresolvedHostError } from './errors.js'
import { buildHashRing, ringSignature } from './consistent-hash.js'
import { systemClock } from './model.js'
import type {
  AddressChange, Clock, HashRing, HealthChange, Level, Peer, PeerHealth, PeerRef, Upstream, UpstreamChange,
  UpstreamDefinition, WrrState,
} from './model.js'

/** What an install changed; the primary uses it to probe, resolve and drain (upstreams.md §5.1, §1.5). */
export interface ApplyReport {
  /** Upstreams created, replaced or deleted. A value equal to the installed one is not a change. */
  readonly changed: readonly string[]
  /** Servers new to their upstream: probe at once. */
  readonly added: readonly PeerRef[]
  /** Servers that left (their upstream may be gone): close idle sockets, drain; their records are gone. */
  readonly removed: readonly PeerRef[]
  /** Heartbeat-enabled upstreams whose `enable`, `typ`, `timeout` or `http_opts` changed: probe every server. */
  readonly reprobe: readonly string[]
  /** Hostnames no installed server used before: resolve at once. */
  readonly newHostnames: readonly string[]
}

/** Where a hostname's address comes from when a peer is compiled. */
type AddressLookup = (host: string) => { readonly address: string | null; readonly error: string | null }

export class UpstreamTable {
  readonly #clock: Clock
  readonly #upstreams = new Map<string, Upstream>()
  /** Last resolution per hostname in use. */
  readonly #addresses = new Map<string, AddressChange>()
  /** Peers per hostname across the table, so a hostname's addresses are forgotten with its last server. */
  readonly #hostRefs = new Map<string, number>()

  constructor(clock: Clock = systemClock) {
    this.#clock = clock
  }

  get(name: string): Upstream | undefined {
    return this.#upstreams.get(name)
  }

  upstreams(): IterableIterator<Upstream> {
    return this.#upstreams.values()
  }

  /** The peer now installed under (upstream, id), if any. */
  findPeer(upstream: string, id: string): Peer | undefined {
    return this.#upstreams.get(upstream)?.peerById.get(id)
  }

  /** Installs a batch of changes in order. Each new Upstream object replaces the old one whole, so a request that
   *  already holds the old object finishes on it; the mutable state it shares with the new one is by design. */
  applyUpstreams(changes: readonly UpstreamChange[]): ApplyReport {
    const nowMs = this.#clock.nowMs()
    const changed: string[] = []
    const added: PeerRef[] = []
    const removed: PeerRef[] = []
    const reprobe: string[] = []
    const firstSeenHosts = new Set<string>()
    const lookup: AddressLookup = (host) => this.#addressFor(host)

    for (const change of changes) {
      const previous = this.#upstreams.get(change.name)
      if (change.kind === 'delete') {
        if (previous === undefined) continue
        this.#upstreams.delete(change.name)
        for (const peer of previous.peers) {
          retire(peer.health)
          removed.push({ upstream: change.name, peer: peer.id })
        }
        this.#countHosts(previous, -1, firstSeenHosts)
        changed.push(change.name)
        continue
      }
      if (previous !== undefined && definitionsEqual(previous.definition, change.definition)) continue

      const next = buildUpstream(change.name, change.definition, previous, nowMs, lookup)
      this.#upstreams.set(change.name, next)
      changed.push(change.name)
      for (const peer of next.peers) {
        if (previous?.peerById.has(peer.id) !== true) added.push({ upstream: change.name, peer: peer.id })
      }
      if (previous !== undefined) {
        for (const peer of previous.peers) {
          if (next.peerById.has(peer.id)) continue
          retire(peer.health)
          removed.push({ upstream: change.name, peer: peer.id })
        }
        this.#countHosts(previous, -1, firstSeenHosts)
        if (next.definition.enable && probeSettingsChanged(previous.definition, next.definition)) {
          reprobe.push(change.name)
        }
      }
      this.#countHosts(next, +1, firstSeenHosts)
    }

    const newHostnames = [...firstSeenHosts].filter((host) => this.#hostRefs.has(host))
    return { changed, added, removed, reprobe, newHostnames }
  }

  /** Worker side: applies the primary's broadcast. Changes for servers no longer installed are ignored (the
   *  broadcast may cross an update on the way). */
  applyHealth(changes: readonly HealthChange[]): void {
    for (const change of changes) {
      const peer = this.findPeer(change.upstream, change.peer)
      if (peer === undefined) continue
      if (change.kind === 'active') {
        peer.health.status = change.status
      } else {
        peer.health.fails = change.fails
        peer.health.untilMs = change.until ?? 0
      }
    }
  }

  /** Records resolver results (primary) or their broadcast (workers) and re-points every peer of those hosts.
   *  Hosts no installed server uses any more are ignored. */
  applyAddresses(changes: readonly AddressChange[]): void {
    const touched = new Set<string>()
    for (const change of changes) {
      if (!this.#hostRefs.has(change.host)) continue
      this.#addresses.set(change.host, change)
      touched.add(change.host)
    }
    if (touched.size === 0) return
    for (const upstream of this.#upstreams.values()) {
      for (const peer of upstream.peers) {
        if (!peer.isHostname || !touched.has(peer.host)) continue
        const { address, error } = this.#addressFor(peer.host)
        peer.address = address
        peer.resolveError = error
      }
    }
  }

  /** Last recorded resolution of a hostname in use, if any. */
  addressesOf(host: string): AddressChange | undefined {
    return this.#addresses.get(host)
  }

  /** Every hostname some installed server uses. */
  hostnames(): string[] {
    return [...this.#hostRefs.keys()]
  }

  /** Everything a freshly started worker needs after installing the upstreams: every record as a change. */
  exportHealth(): HealthChange[] {
    const out: HealthChange[] = []
    for (const upstream of this.#upstreams.values()) {
      for (const peer of upstream.peers) {
        const h = peer.health
        out.push({ kind: 'active', upstream: upstream.name, peer: peer.id, status: h.status })
        if (h.fails > 0 || h.untilMs > 0) {
          out.push({
            kind: 'passive', upstream: upstream.name, peer: peer.id, status: h.untilMs > 0 ? 'err' : 'ok',
            fails: h.fails, until: h.untilMs > 0 ? h.untilMs : null,
          })
        }
      }
    }
    return out
  }

  exportAddresses(): AddressChange[] {
    return [...this.#addresses.values()]
  }

  #addressFor(host: string): { address: string | null; error: string | null } {
    const known = this.#addresses.get(host)
    if (known !== undefined && known.addresses.length > 0) return { address: known.addresses[0]!, error: null }
    return { address: null, error: known?.error ?? new UnresolvedHostError(host, 'not resolved yet').message }
  }

  #countHosts(upstream: Upstream, delta: 1 | -1, firstSeen: Set<string>): void {
    for (const peer of upstream.peers) {
      if (!peer.isHostname) continue
      const count = (this.#hostRefs.get(peer.host) ?? 0) + delta
      if (count > 0) {
        if (count === 1 && delta === 1 && !this.#addresses.has(peer.host)) firstSeen.add(peer.host)
        this.#hostRefs.set(peer.host, count)
      } else {
        this.#hostRefs.delete(peer.host)
        this.#addresses.delete(peer.host)
      }
    }
  }
}

/** Compiles one definition. `previous` (the installed upstream of that name) lends its health records by id, its
 *  WRR state by (level, id, weight) and its rings by level signature (upstreams.md §0, §2.2). */
export function buildUpstream(
  name: string,
  definition: UpstreamDefinition,
  previous: Upstream | undefined,
  nowMs: number,
  addressFor: AddressLookup,
): Upstream {
  const resetsActive = previous !== undefined && previous.definition.enable && !definition.enable
  const isHashMode = definition.mode !== 'rr'
  const peers: Peer[] = []
  const peerById = new Map<string, Peer>()
  const levels: Level[] = definition.cluster.map((levelDef, l) => {
    const levelPeers = levelDef.servers.map((server, i) => {
      const old = previous?.peerById.get(server.id)
      const health = old?.health ?? newHealth(nowMs)
      // Disabling the heartbeat resets records to unchecked (upstreams.md §5.3).
      if (resetsActive) resetActive(health, nowMs)
      const wrr: WrrState = old !== undefined && old.levelIndex === l && old.weight === server.weight
        ? old.wrr
        : { current: 0, effective: server.weight }
      const isHostname = isIP(server.host) === 0
      const resolved = isHostname ? addressFor(server.host) : { address: server.host, error: null }
      const peer: Peer = {
        upstream: name,
        id: server.id,
        host: server.host,
        port: server.port,
        isHostname,
        weight: server.weight,
        maxFails: server.max_fails,
        failTimeoutMs: server.fail_timeout * 1000,
        isDown: server.down,
        levelIndex: l,
        serverIndex: i,
        health,
        wrr,
        address: resolved.address,
        resolveError: resolved.error,
      }
      peers.push(peer)
      peerById.set(peer.id, peer)
      return peer
    })
    let ring: HashRing | null = null
    if (isHashMode && levelPeers.length > 1) {
      const oldRing = previous?.levels[l]?.ring ?? null
      ring = oldRing !== null && oldRing.signature === ringSignature(levelPeers)
        ? oldRing
        : buildHashRing(levelPeers, oldRing)
    }
    return { index: l, peers: levelPeers, ring }
  })
  return {
    name,
    definition,
    isStream: definition.stream,
    mode: definition.mode,
    hashHeader: definition.hash_header.toLowerCase(),
    levels,
    peers,
    peerById,
    tries: definition.try,
    tryTimeoutMs: definition.try_timeout * 1000,
    connectTimeoutMs: definition.connect_timeout * 1000,
    sendTimeoutMs: definition.send_timeout * 1000,
    readTimeoutMs: definition.read_timeout * 1000,
    keepalive: definition.keepalive,
  }
}

/** A new server, or one with heartbeat disabled, is `unchecked` since the time it was added (upstreams.md §5.3). */
export function newHealth(nowMs: number): PeerHealth {
  return {
    status: 'unchecked', failNum: 0, successes: 0, msg: null, lastModifiedMs: nowMs,
    fails: 0, windowStartMs: -1, untilMs: 0, isRetired: false,
  }
}

function resetActive(health: PeerHealth, nowMs: number): void {
  if (health.status !== 'unchecked') health.lastModifiedMs = nowMs
  health.status = 'unchecked'
  health.failNum = 0
  health.successes = 0
  health.msg = null
}

function retire(health: PeerHealth): void {
  health.isRetired = true
}

/** Both come from parse.ts, which emits fields in one order, so equal values serialise identically. */
function definitionsEqual(a: UpstreamDefinition, b: UpstreamDefinition): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b)
}

function probeSettingsChanged(a: UpstreamDefinition, b: UpstreamDefinition): boolean {
  return a.enable !== b.enable || a.typ !== b.typ || a.timeout !== b.timeout ||
    JSON.stringify(a.http_opts) !== JSON.stringify(b.http_opts)
}

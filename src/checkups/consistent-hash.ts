/** Consistent hashing (upstreams.md §2.3): the 32-bit MD5 hash, ring construction with 160 points per unit of weight
 *  (40 960 points at most per level), the ring walk that skips servers a request cannot use, and the four key modes.
 *  Owns rings and keys. Leaves availability to availability.ts and which level to walk to levels.ts.
 *  The walk allocates nothing; computing a key hashes a string, once per request, never per pick. */
import { hash as digest } from 'node:crypto'
import { canAttempt } from './availability.js'
import type { TriedPeers } from './availability.js'
import type { HashRing, Peer, RingServerPoints, Upstream } from './model.js'

export const POINTS_PER_WEIGHT = 160
export const MAX_RING_POINTS = 40_960

/** `h(s)`: the first 4 bytes of MD5 of the UTF-8 bytes of `s`, unsigned 32-bit big-endian. */
export function hash32(text: string): number {
  return digest('md5', text, 'buffer').readUInt32BE(0)
}

/** Where `h` sits on the ring: `h − 2^31`, a signed 32-bit integer with the same order as `h`. Rings and keys use
 *  positions because half of all uint32 values are not small integers to V8: passing such a key between functions
 *  would box it into a fresh heap number on every pick. */
export function ringPosition(h: number): number {
  return (h ^ 0x8000_0000) | 0
}

/** Points per server: 160·w, or `max(1, floor(40960·w/Σw))` each when the level would exceed 40 960. */
export function ringPointCounts(weights: readonly number[]): number[] {
  let full = 0
  let sum = 0
  for (const w of weights) {
    full += POINTS_PER_WEIGHT * w
    sum += w
  }
  if (full <= MAX_RING_POINTS) return weights.map((w) => POINTS_PER_WEIGHT * w)
  return weights.map((w) => Math.max(1, Math.floor((MAX_RING_POINTS * w) / sum)))
}

/** Identifies a ring: the level's (id, weight) list in order. An update with the same signature keeps the ring. */
export function ringSignature(servers: readonly { readonly id: string; readonly weight: number }[]): string {
  return servers.map((s) => `${s.id}*${s.weight}`).join(',')
}

/** Builds a level's ring (values are ring positions). Points of a server whose (id, count) is unchanged from `previous` are reused, so adding
 *  one server hashes only it. */
export function buildHashRing(
  servers: readonly { readonly id: string; readonly weight: number }[],
  previous: HashRing | null,
): HashRing {
  const counts = ringPointCounts(servers.map((s) => s.weight))
  const cached = new Map<string, Uint32Array>()
  if (previous !== null) for (const s of previous.servers) cached.set(`${s.id}#${s.points.length}`, s.points)

  const perServer: RingServerPoints[] = []
  let total = 0
  servers.forEach((server, k) => {
    const count = counts[k]!
    let points = cached.get(`${server.id}#${count}`)
    if (points === undefined) {
      points = new Uint32Array(count)
      for (let i = 0; i < count; i++) points[i] = hash32(`${server.id}#${i}`)
    }
    perServer.push({ id: server.id, points })
    total += count
  })

  // Sort keys pack (value, generation index) into one float: value · 2^16 + index stays below 2^48, exact in a
  // double. Generation order is server order then i, so equal values keep the required tie order (§2.3).
  const keys = new Float64Array(total)
  const ownerOf = new Uint32Array(total)
  let g = 0
  perServer.forEach((server, k) => {
    for (let i = 0; i < server.points.length; i++, g++) {
      keys[g] = server.points[i]! * 65_536 + g
      ownerOf[g] = k
    }
  })
  keys.sort()
  const values = new Int32Array(total)
  const owners = new Uint32Array(total)
  for (let p = 0; p < total; p++) {
    const key = keys[p]!
    const index = key % 65_536
    values[p] = ringPosition((key - index) / 65_536)
    owners[p] = ownerOf[index]!
  }
  return { signature: ringSignature(servers), values, owners, servers: perServer }
}

/** First point with position ≥ `keyHash` (a ring position), wrapping to 0. */
export function ringStart(values: Int32Array, keyHash: number): number {
  let lo = 0
  let hi = values.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (values[mid]! < keyHash) lo = mid + 1
    else hi = mid
  }
  return lo === values.length ? 0 : lo
}

/** Walks the ring from the key's point to the first peer this request can attempt. The caller has checked that one
 *  exists in this level, so the walk ends; the bound only guards that contract. */
export function pickFromRing(
  ring: HashRing,
  peers: readonly Peer[],
  keyHash: number,
  tried: TriedPeers,
  nowMs: number,
): Peer | null {
  const { values, owners } = ring
  const n = values.length
  if (n === 0) return null
  let p = ringStart(values, keyHash)
  for (let step = 0; step < n; step++) {
    const peer = peers[owners[p]!]!
    if (canAttempt(peer, tried, nowMs)) return peer
    p = p + 1 === n ? 0 : p + 1
  }
  return null
}

/** What the hash modes read from a request or connection. */
export interface HashKeySource {
  /** Request-target as received (path and query, not decoded); `''` for a stream connection. */
  readonly target: string
  /** TCP peer address of the client. */
  readonly remoteAddress: string | undefined
  /** Incoming headers with lower-cased names, as Node presents them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** `hash` mode only: a per-request key set by a script (scripts.md); null or absent = use the uri. */
  readonly scriptKey?: string | null
}

/** The ring position of the request's key for the upstream's mode, or 0 in `rr` (unused). Called once per request;
 *  `pickPeer` takes the result. */
export function hashKeyOf(upstream: Upstream, source: HashKeySource): number {
  return upstream.mode === 'rr' ? 0 : ringPosition(hash32(hashKeyText(upstream, source)))
}

/** The key string of §2.3 for a hash mode. */
export function hashKeyText(upstream: Upstream, source: HashKeySource): string {
  switch (upstream.mode) {
    case 'rr':
    case 'url_hash':
      return uriOf(source.target)
    case 'hash':
      return source.scriptKey ?? uriOf(source.target)
    case 'ip_hash':
      return clientIp(source.remoteAddress)
    case 'header_hash': {
      const raw = source.headers[upstream.hashHeader]
      const value = Array.isArray(raw) ? raw[0] : raw
      return value === undefined || value === '' ? uriOf(source.target) : value
    }
  }
}

/** The uri: the request-target's path before the first `?`, as received. An absolute-form target
 *  (`http://host/p?q`) contributes its path, so a proxy-style request hashes like an origin-form one. */
export function uriOf(target: string): string {
  let start = 0
  if (target.charCodeAt(0) !== 47 /* / */) {
    const scheme = target.indexOf('://')
    if (scheme >= 0) {
      const slash = target.indexOf('/', scheme + 3)
      if (slash < 0) return '/'
      start = slash
    }
  }
  const query = target.indexOf('?', start)
  return query < 0 ? (start === 0 ? target : target.slice(start)) : target.slice(start, query)
}

/** IPv4-mapped IPv6 (`::ffff:10.0.0.1`) reduced to IPv4, so dual-stack listeners hash a client the same way. */
export function clientIp(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return ''
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress
}

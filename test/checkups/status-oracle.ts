/** The `/status` builder as it was before it wrote JSON text directly: an object tree in the document's key order,
 *  serialised by JSON.stringify. Kept only as the oracle that `buildStatusBody` must match byte for byte. */
import type { Peer, Upstream } from '../../src/checkups/model.js'
import { formatLocalTime, type JsonValue, type StatusDocumentInput, type UpstreamSourceInfo } from '../../src/checkups/status.js'

export function oracleStatusText(input: StatusDocumentInput): string {
  const doc: Record<string, JsonValue> = {
    slardar_version: input.slardarVersion,
    start_time: formatLocalTime(input.startTimeMs),
    last_check_time: input.heartbeat.lastCheckTimeMs === null ? null : formatLocalTime(input.heartbeat.lastCheckTimeMs),
    checkup_timer_alive: input.heartbeat.isAlive(input.nowMs),
    conf_hash: input.confHash,
    shd_config_version: input.shdConfigVersion,
    config_timer: input.configTimer,
    consul: input.consul,
  }
  if (input.clsConsul !== undefined) doc['cls:consul'] = input.clsConsul
  const served = new Map<string, Upstream>()
  for (const upstream of input.upstreams) served.set(upstream.name, upstream)
  const names = [...new Set([...served.keys(), ...input.sources.keys()])]
  const http = names.filter((name) => !name.startsWith('stream:')).sort()
  const stream = names.filter((name) => name.startsWith('stream:')).sort((a, b) => port(a) - port(b))
  for (const name of [...http, ...stream]) {
    const upstream = served.get(name)
    if (upstream !== undefined) {
      doc[`cls:${name}`] = upstream.levels.map((level) => level.peers.map((peer) => serverStatus(upstream, peer, input.nowMs)))
    }
    const source = input.sources.get(name)
    if (source !== undefined) doc[`upstream:${name}`] = sourceStatus(source)
  }
  return JSON.stringify(doc)
}

function serverStatus(upstream: Upstream, peer: Peer, nowMs: number): JsonValue {
  const h = peer.health
  const isEjected = h.untilMs > nowMs
  const isExpired = h.untilMs > 0 && !isEjected
  return {
    server: `${upstream.name}:${peer.id}`,
    weight: peer.weight,
    max_fails: peer.maxFails,
    fail_timeout: peer.failTimeoutMs / 1000,
    status: h.status,
    fail_num: h.failNum,
    lastmodified: formatLocalTime(h.lastModifiedMs),
    msg: h.msg,
    passive: { status: isEjected ? 'err' : 'ok', fails: isExpired ? 0 : h.fails, until: isEjected ? formatLocalTime(h.untilMs) : null },
    down: peer.isDown,
  }
}

function sourceStatus(source: UpstreamSourceInfo): JsonValue {
  return {
    source: source.source,
    consul_index: source.consulIndex,
    modify_index: source.modifyIndex,
    updated_at: source.updatedAtMs === null ? null : formatLocalTime(source.updatedAtMs),
    error: source.error,
  }
}

function port(name: string): number {
  return Number(name.slice('stream:'.length))
}

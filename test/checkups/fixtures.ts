/** Shared fixtures for the checkups unit tests: a hand-moved clock and short ways to install upstreams from
 *  Slardar JSON. Not a test file itself. */
import assert from 'node:assert/strict'
import { parseUpstreamJson } from '../../src/checkups/parse.js'
import { UpstreamTable } from '../../src/checkups/table.js'
import type { Clock, Peer, Upstream, UpstreamDefinition } from '../../src/checkups/model.js'

export class ManualClock implements Clock {
  constructor(public ms = 0) {}

  nowMs(): number {
    return this.ms
  }

  /** Moves to `seconds` after the epoch start of the test. */
  setSec(seconds: number): void {
    this.ms = seconds * 1000
  }
}

export function definitionOf(value: unknown, stream = false): UpstreamDefinition {
  const result = parseUpstreamJson('test', value, undefined, { stream })
  assert.ok(result.ok, result.ok ? '' : result.message)
  return result.upstream
}

/** Installs `value` as upstream `name` in `table` and returns the installed upstream. */
export function install(table: UpstreamTable, name: string, value: unknown): Upstream {
  table.applyUpstreams([{ kind: 'set', name, definition: definitionOf(value) }])
  return table.get(name)!
}

/** A fresh table holding one upstream. */
export function upstreamOf(value: unknown, clock: Clock = new ManualClock()): { table: UpstreamTable; upstream: Upstream } {
  const table = new UpstreamTable(clock)
  return { table, upstream: install(table, 'test', value) }
}

/** Servers named by letter: `servers('a', 5)` style pairs become 10.0.0.<n>:80 with the given weights. */
export function weighted(...weights: number[]): { host: string; port: number; weight: number }[] {
  return weights.map((weight, i) => ({ host: `10.0.0.${i + 1}`, port: 80, weight }))
}

export function peer(upstream: Upstream, id: string): Peer {
  const found = upstream.peerById.get(id)
  assert.ok(found, `no peer ${id} in ${upstream.name}`)
  return found
}

/** Maps peers back to one-letter names for compact expectations. */
export function namer(upstream: Upstream, letters: string): (p: Peer | null) => string {
  return (p) => (p === null ? '-' : letters[upstream.peers.indexOf(p)] ?? '?')
}

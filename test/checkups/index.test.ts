import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import * as checkups from '../../src/checkups/index.js'

const SOURCE_DIR = new URL('../../../src/checkups/', import.meta.url)

test('the public face exposes what the proxy, Consul watcher, admin and cluster call', () => {
  for (const name of ['parseUpstreamJson', 'UpstreamTable', 'pickPeer', 'hashKeyOf', 'AttemptPlanner', 'PassiveHealth',
    'Heartbeat', 'HostResolver', 'CheckupsPrimary', 'buildStatusBody', 'formatLocalTime',
    'isPeerAvailable', 'TriedPeers', 'streamUpstreamName', 'NoUsablePeerError', 'UnresolvedHostError']) {
    assert.equal(typeof (checkups as Record<string, unknown>)[name], 'function', name)
  }
})

test('checkups imports only its own files, config types, node: modules, json5 and p-limit', () => {
  const allowed = /^(\.\/[a-z-]+\.js|\.\.\/config\/index\.js|node:[a-z/]+|json5|p-limit)$/
  for (const file of readdirSync(SOURCE_DIR).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(new URL(file, SOURCE_DIR), 'utf8')
    for (const [line, spec] of source.matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)) {
      assert.match(spec!, allowed, `${file} imports ${spec}`)
      if (spec!.startsWith('../config/')) assert.match(line, /^(import|export) type /, `${file} needs only config types`)
    }
  }
})

test('only heartbeat.ts opens sockets', () => {
  for (const file of readdirSync(SOURCE_DIR).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(new URL(file, SOURCE_DIR), 'utf8')
    if (file !== 'heartbeat.ts') assert.doesNotMatch(source, /\bconnect\(|createConnection|from 'node:(http|https|dgram)'/, file)
  }
})

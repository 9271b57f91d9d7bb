/** The lean prototypes as bench subjects of the `engines` case: one name per front/back pairing, each a server
 *  for `engines.ts` to listen with. Owns the pairing and the prototype's settings (the product's defaults from
 *  proxy.md §1 where one applies).
 *
 *  | subject | front | back |
 *  |---|---|---|
 *  | `tcp-relay` | bytes only | one server connection per client connection |
 *  | `lean-http` | lean (node:net) | lean (node:net, LIFO idle pool) |
 *  | `lean-http-cork` | lean, head and first body bytes corked into one writev instead of copied into one buffer | lean |
 *  | `lean-undici` | lean | undici Pool |
 *  | `node-lean` | node:http server | lean | */

import type { Server } from 'node:net'
import type { Backend } from './exchange.js'
import { LeanBack } from './lean-back.js'
import { createLeanFront, type LeanFrontOptions } from './lean-front.js'
import { createNodeFront } from './node-front.js'
import { createTcpRelay } from './tcp-relay.js'
import { UndiciBack } from './undici-back.js'

export const LEAN_SUBJECTS = ['tcp-relay', 'lean-http', 'lean-http-cork', 'lean-undici', 'node-lean'] as const
export type LeanSubject = (typeof LEAN_SUBJECTS)[number]

/** Matches the anchor nginx's `keepalive 64` and wrk's 64 connections. */
const IDLE_SOCKETS = 64
/** proxy.upstream_idle_timeout: below Node's (and far below nginx's) server keep-alive. */
const IDLE_SOCKET_MS = 4_000
const CLIENT_KEEPALIVE_MS = 15_000

function leanFrontOptions(writeMode: LeanFrontOptions['writeMode']): LeanFrontOptions {
  return {
    maxHeadBytes: 16 * 1024,
    maxBodyBytes: 1024 * 1024 * 1024,
    keepAliveTimeoutMs: CLIENT_KEEPALIVE_MS,
    activeTimeoutMs: 60_000,
    writeMode,
  }
}

function leanBack(backendPort: number): Backend {
  return new LeanBack({
    host: '127.0.0.1',
    port: backendPort,
    idleSockets: IDLE_SOCKETS,
    idleTimeoutMs: IDLE_SOCKET_MS,
    connectTimeoutMs: 3_000,
    readTimeoutMs: 60_000,
    maxResponseHeadBytes: 64 * 1024,
  })
}

export function isLeanSubject(value: string): value is LeanSubject {
  return (LEAN_SUBJECTS as readonly string[]).includes(value)
}

export function createLeanSubject(subject: LeanSubject, backendPort: number): Server {
  switch (subject) {
    case 'tcp-relay':
      return createTcpRelay(backendPort)
    case 'lean-http':
      return createLeanFront(leanBack(backendPort), leanFrontOptions('copy'))
    case 'lean-http-cork':
      return createLeanFront(leanBack(backendPort), leanFrontOptions('cork'))
    case 'lean-undici':
      return createLeanFront(new UndiciBack(`http://127.0.0.1:${backendPort}`, IDLE_SOCKETS, IDLE_SOCKET_MS), leanFrontOptions('copy'))
    case 'node-lean':
      return createNodeFront(leanBack(backendPort), CLIENT_KEEPALIVE_MS)
  }
}

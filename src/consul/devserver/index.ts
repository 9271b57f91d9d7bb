/** The embedded Consul-compatible server (consul.md Part 2): an in-memory, single-process stand-in that answers
 *  the proxy and the `consul` npm client exactly as a single-server Consul CE agent (1.16–1.22) does, for
 *  `slardar dev`, `slardar consul-dev` and every integration test. This file is its public face: it validates the
 *  options, loads `--data`, wires state, endpoints and HTTP together, and owns start and shutdown.
 *
 *  Options (DevServerOptions, all optional; Consul's names with a unit suffix for times):
 *    listen "127.0.0.1:0" · datacenter "dc1" · node_name "node1" · kv_max_value_size 524288 ·
 *    txn_max_req_len 524288 · txn_max_ops 128 · default_query_time_ms 300000 · max_query_time_ms 600000 ·
 *    session_ttl_min_ms 10000 · lock_delay_max_ms 60000 · acl_token null (set = ACL mode) · acl_tokens [] ·
 *    disable_kv_key_validation false · strict_keys false · start_index 10 · jitter_seed random ·
 *    tombstone_ttl_ms 0 (never) · data null (in memory) · logger silent.
 *
 *  Deliberate differences from Consul are listed in consul.md §26 (one node, no-op writes consume no index, one
 *  catalog index, TTL checks only, KV-only transactions, session TTL expiry at exactly 2 × TTL, …). */

import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { AclPolicy } from './acl.js'
import { agentRoutes } from './agent-api.js'
import { BlockingHub } from './blocking.js'
import type { NodeIdentity } from './catalog.js'
import { DevServerError } from './errors.js'
import { DevHttpServer, type Route } from './http.js'
import { JitterSource } from './jitter.js'
import { createKvHandler } from './kv-api.js'
import { resolveOptions, type DevServerOptions } from './options.js'
import { DATA_FILE_NAME, loadDataFile, PersistenceScheduler } from './persistence.js'
import { sessionRoutes } from './session-api.js'
import { DevState, MONOTONIC_CLOCK } from './state.js'
import { txnRoute } from './txn-api.js'

export type { TestToken } from './acl.js'
export { DevServerError, type DevServerErrorCode } from './errors.js'
export type { DevServerLogger, DevServerOptions } from './options.js'

export interface DevServerStats {
  /** Blocking queries parked right now. */
  readonly waiters: number
  readonly sessions: number
  /** The global index counter. */
  readonly index: bigint
}

export interface DevServer {
  /** `http://127.0.0.1:PORT` (loopback even when listening on all interfaces). */
  readonly url: string
  readonly host: string
  readonly port: number
  /** Stops listening, drops parked queries and open connections, writes `--data` one last time. Idempotent. */
  close(): Promise<void>
  stats(): DevServerStats
  /** Reaps every tombstone now, as Consul's tombstone GC would (a list index may go backwards). */
  reapTombstones(): void
  /** Keeps accepting connections but answers nothing until resume() (a black-holed Consul). */
  pause(): void
  resume(): void
}

const CONSUL_VERSION = '1.22.0'
/** Bound on JSON bodies Consul itself leaves unbounded (session create, service register). */
const MAX_JSON_BODY_BYTES = 1 << 20

function listen(http: DevHttpServer, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new DevServerError(
          'CONSUL_DEV_LISTEN_FAILED',
          `consul-dev: cannot listen on ${host}:${port} (${err.code ?? err.message}); choose another listen address`,
          { cause: err },
        ),
      )
    }
    http.server.once('error', onError)
    http.server.listen(port, host, () => {
      http.server.off('error', onError)
      resolve(http.server.address() as AddressInfo)
    })
  })
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const settings = resolveOptions(options)
  const { logger, dataDir } = settings
  const persisted = dataDir === null ? null : await loadDataFile(dataDir)

  const node: NodeIdentity = {
    nodeName: settings.nodeName,
    nodeId: randomUUID(),
    datacenter: settings.datacenter,
    version: CONSUL_VERSION,
  }
  let scheduler: PersistenceScheduler | null = null
  const state = new DevState(
    { node, startIndex: settings.startIndex, tombstoneTtlMs: settings.tombstoneTtlMs },
    new BlockingHub(new JitterSource(settings.jitterSeed)),
    MONOTONIC_CLOCK,
    {
      onDurableChange: () => scheduler?.markDirty(),
      onError: (err, message) => logger.error({ err }, `consul-dev: ${message}`),
    },
  )
  if (persisted !== null && dataDir !== null) {
    state.restore(persisted.kv, persisted.index)
    const loaded = { dir: dataDir, keys: persisted.kv.entries.length, index: persisted.index.toString() }
    logger.info(loaded, `consul-dev: loaded ${DATA_FILE_NAME}`)
  }
  if (dataDir !== null) {
    scheduler = new PersistenceScheduler(
      dataDir,
      () => ({ index: state.index, kv: state.kv.exportState() }),
      (err) => logger.error({ err, dir: dataDir }, `consul-dev: cannot write ${DATA_FILE_NAME}; the next change retries`),
    )
  }

  const acl = new AclPolicy(settings.aclToken, settings.aclTokens)
  const keyRules = { isValidationDisabled: settings.isKeyValidationDisabled, isStrict: settings.isStrictKeys }
  const routes: Route[] = [
    {
      path: '/v1/kv/',
      methods: ['GET', 'PUT', 'DELETE'],
      hasQueryOptions: true,
      handler: createKvHandler({ state, acl, keyRules, kvMaxValueSize: settings.kvMaxValueSize }),
    },
    txnRoute({
      state,
      acl,
      keyRules,
      limits: { txnMaxOps: settings.txnMaxOps, kvMaxValueSize: settings.kvMaxValueSize },
      txnMaxReqLen: settings.txnMaxReqLen,
    }),
    ...sessionRoutes({
      state,
      acl,
      limits: { nodeName: settings.nodeName, sessionTtlMinMs: settings.sessionTtlMinMs, lockDelayMaxMs: settings.lockDelayMaxMs },
      maxBodyBytes: MAX_JSON_BODY_BYTES,
    }),
    ...agentRoutes({ state, acl, node, maxBodyBytes: MAX_JSON_BODY_BYTES }),
  ]
  const http = new DevHttpServer({
    routes,
    acl,
    datacenter: settings.datacenter,
    limits: { defaultQueryTimeMs: settings.defaultQueryTimeMs, maxQueryTimeMs: settings.maxQueryTimeMs },
    onUnexpectedError: (err, method, target) =>
      logger.error({ err, method, target }, 'consul-dev: unexpected error while answering a request'),
  })

  let address: AddressInfo
  try {
    address = await listen(http, settings.host, settings.port)
  } catch (err) {
    state.close()
    throw err
  }
  const isAnyAddress = address.address === '0.0.0.0' || address.address === '::'
  const host = isAnyAddress ? '127.0.0.1' : address.address
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`

  let closing: Promise<void> | null = null
  return {
    url,
    host,
    port: address.port,
    close: () =>
      (closing ??= (async () => {
        state.close()
        http.discardHeld()
        await new Promise<void>((resolve) => {
          http.server.close(() => resolve())
          http.server.closeAllConnections()
        })
        await scheduler?.close()
      })()),
    stats: () => ({ waiters: state.hub.count, sessions: state.sessions.size, index: state.index }),
    reapTombstones: () => state.reapTombstones(null),
    pause: () => http.pause(),
    resume: () => http.resume(),
  }
}

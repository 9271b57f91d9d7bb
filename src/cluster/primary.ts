/** The primary process (README "Process model"): owns the Consul watch, the apply step and the checkups
 *  table with its heartbeats. Each usable listing is applied key by key and the upstream changes are
 *  installed into checkups, so hot-added upstreams are probed at once. Still to come here: startup from
 *  the snapshot file and the deletion guard (#4), the admin API and the data path (#5), workers (#7). */

import { CheckupsPrimary, parseUpstreamJson, type UpstreamChange, upstreamDefaultsFrom } from '../checkups/index.js'
import type { Config } from '../config/index.js'
import { type ApplyOptions, applyListing, EMPTY_KV_STATE, type KvState } from '../consul/apply.js'
import { closeEndpoints, createEndpoints } from '../consul/client.js'
import { KvWatch, type Listing, type ListingReason } from '../consul/watch.js'
import type { Logger } from '../log.js'

export class Primary {
  readonly checkups: CheckupsPrimary
  private readonly watch: KvWatch | null
  private readonly stopEndpoints: () => void
  private kvState: KvState = EMPTY_KV_STATE
  private readonly applyOptions: ApplyOptions
  /** Static upstreams from the config file win over KV upstreams of the same name (config.md). */
  private readonly staticNames: ReadonlySet<string>

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    this.applyOptions = { layout: config.consul, upstreamDefaults: upstreamDefaultsFrom(config) }
    this.checkups = new CheckupsPrimary({
      checkupTimerIntervalSec: config.global.checkup_timer_interval,
      checkupTimerOvertimeSec: config.global.checkup_timer_overtime,
      heartbeatConcurrency: config.global.heartbeat_concurrency,
      resolveIntervalSec: config.global.resolve_interval,
      // Workers arrive with #7; with one process the table is shared and there is nobody to tell.
      onBroadcast: (message) => {
        if (message.kind === 'health' && log.isLevelEnabled('debug')) log.debug({ changes: message.changes }, 'health changed')
      },
      onWarning: (warning) => log.warn({ err: warning }, 'checkups warning'),
    })
    const staticChanges = parseStaticUpstreams(config).changes
    this.staticNames = new Set(staticChanges.map((change) => change.name))
    if (staticChanges.length > 0) this.checkups.install(staticChanges)

    if (!config.consul.enable) {
      this.watch = null
      this.stopEndpoints = () => undefined
      return
    }
    const endpoints = createEndpoints(config)
    this.stopEndpoints = () => closeEndpoints(endpoints)
    this.watch = new KvWatch({
      endpoints,
      prefix: config.consul.config_key_prefix,
      waitSec: config.consul.wait,
      timeoutSec: config.consul.timeout,
      log,
      handler: {
        onListing: (listing, reason) => this.onListing(listing, reason),
        onStartupFailure: (error) => log.error(`cannot read ${config.consul.config_key_prefix} from Consul (${error.message}); retrying`),
      },
    })
  }

  start(): void {
    if (this.watch === null) {
      this.log.warn('consul.enable is false: serving static upstreams only (the file-backed store comes with #4)')
      return
    }
    this.watch.start()
    this.log.info({ prefix: this.config.consul.config_key_prefix, server: this.watch.currentServer.name }, 'watching consul')
  }

  async stop(): Promise<void> {
    await this.watch?.stop()
    this.stopEndpoints()
    await this.checkups.stop()
  }

  /** The applied KV state (served keys and rejections). */
  get state(): KvState {
    return this.kvState
  }

  get consulWatch(): KvWatch | null {
    return this.watch
  }

  private onListing(listing: Listing, reason: ListingReason): void {
    const result = applyListing(this.kvState, listing, this.applyOptions)
    this.kvState = result.next
    for (const rejection of result.newRejections) {
      this.log.error({ key: rejection.key, modify_index: rejection.modifyIndex.toString() }, rejection.message)
    }
    const changes = result.upstreamChanges.filter((change) => !this.staticNames.has(change.name))
    if (changes.length > 0) this.checkups.install(changes)
    if (result.changedKeys.length > 0 || result.newRejections.length > 0) {
      this.log.info(
        { index: listing.index.toString(), reason, changed: result.changedKeys, rejected: result.newRejections.map((r) => r.key) },
        `applied consul listing: ${result.changedKeys.length} changed, ${this.kvState.served.size} keys served`,
      )
    }
  }
}

/** The config file's static upstreams as checkups changes, and the problems of those that fail validation
 *  (paths `upstreams.<name>`). check-config and start refuse a file with problems (cli.ts), so the primary
 *  only ever installs a complete list. */
export function parseStaticUpstreams(config: Config): { changes: UpstreamChange[]; problems: string[] } {
  const defaults = upstreamDefaultsFrom(config)
  const changes: UpstreamChange[] = []
  const problems: string[] = []
  for (const [name, value] of Object.entries(config.upstreams)) {
    const parsed = parseUpstreamJson(`upstreams.${name}`, value, defaults)
    if (parsed.ok) changes.push({ kind: 'set', name, definition: parsed.upstream })
    else problems.push(parsed.message)
  }
  return { changes, problems }
}

/** `/lua` and `/js` (admin-api.md §7): stage, activate, activate everything staged, set the commit version,
 *  remove, and the GET shapes with `global_version`, `commit_version`, `modules` and `errors`. The two
 *  families differ only in their KV folder, the runtime the backend's compile check uses, and Lua's reserved
 *  names. Staged code lives in KV (`<folder>/.staged/<name>`), so every node sees one staging area; the
 *  two-key operations are one `/v1/txn` each (consul.md §8). Nothing here runs code. */

import { isUtf8 } from 'node:buffer'
import { formatLocalTime } from '../checkups/index.js'
import type { KvState, ServedKey } from '../consul/apply.js'
import { type KeyLayout, type ScriptRuntime, scriptNameProblem } from '../consul/keys.js'
import { CONSUL_MAX_VALUE_BYTES, type TxnOp } from '../consul/write.js'
import type { AdminBackend } from './backend.js'
import { EMPTY_BODY, jsonReply, type Reply, SCRIPT_OK, statusReply } from './replies.js'
import { type AdminRequest, isBlankBody, isDryRun } from './routes.js'
import { md5Hex, type ScriptVersionTracker } from './script-versions.js'
import { replyFor, type WriteFlow } from './write-flow.js'

/** admin-api.md §7: names per activation transaction (2 ops each, far below Consul's 128). */
export const ACTIVATIONS_PER_TXN = 32
/** Source bytes per activation transaction: base64 makes them 4/3 larger, and Consul's `txn_max_req_len`
 *  (512 KiB by default) bounds the whole body. A single larger script still goes alone. */
const ACTIVATION_BYTES_PER_TXN = 384 * 1024
const MAX_COMMIT_VERSION_CHARS = 200
const VALUE_TOO_LARGE = statusReply(413, `value too large for consul (max ${CONSUL_MAX_VALUE_BYTES} bytes)`)

interface ScriptKeys {
  readonly active: string
  readonly staged: string
}

interface Activation {
  readonly name: string
  readonly keys: ScriptKeys
  readonly source: Buffer
  /** Newest known ModifyIndex of the active key (0 when absent). */
  readonly activeIndex: bigint
  readonly stagedIndex: bigint
}

export class ScriptEndpoints {
  private readonly folder: string

  constructor(
    private readonly runtime: ScriptRuntime,
    layout: KeyLayout,
    private readonly backend: AdminBackend,
    private readonly flow: WriteFlow,
    private readonly versions: ScriptVersionTracker,
  ) {
    this.folder = runtime === 'lua' ? layout.lua_prefix : layout.js_prefix
  }

  /** GET /lua */
  list = (): Reply => {
    const state = this.backend.kvState()
    const commit = state.served.get(`${this.folder}/version`)
    const errors = this.backend.scriptErrors(this.runtime).map((report) => ({
      name: report.name,
      version: report.version,
      error: report.error,
      time: formatLocalTime(report.atMs),
    }))
    return jsonReply(200, {
      global_version: this.versions.globalVersion(this.runtime),
      commit_version: commit?.value.kind === 'commit_version' ? commit.value.version : '0',
      modules: this.versions.activeScripts(this.runtime).map((script) => ({
        name: script.name,
        version: script.version,
        time: formatLocalTime(script.appliedAtMs),
      })),
      errors,
    })
  }

  /** GET /lua/<name>: the active version, or `{}` (Slardar). */
  get = (request: AdminRequest): Reply => {
    const name = request.param ?? ''
    const problem = scriptNameProblem(this.runtime, name)
    if (problem !== null) return statusReply(400, problem)
    const active = this.versions.activeScripts(this.runtime).find((script) => script.name === name)
    if (active === undefined) return jsonReply(200, {})
    return jsonReply(200, { name, version: active.version, time: formatLocalTime(active.appliedAtMs) })
  }

  /** POST /lua/<name>: compile check, then write the staged key. Nothing becomes active. */
  stage = async (request: AdminRequest): Promise<Reply> => {
    const name = request.param ?? ''
    const problem = scriptNameProblem(this.runtime, name)
    if (problem !== null) return statusReply(400, problem)
    const source = request.body
    if (isBlankBody(source)) return EMPTY_BODY
    if (source.length > CONSUL_MAX_VALUE_BYTES) return VALUE_TOO_LARGE
    if (!isUtf8(source)) return statusReply(400, 'invalid source: not valid UTF-8')
    const compileError = this.backend.compileScript(this.runtime, name, source.toString('utf8'))
    if (compileError !== null) return statusReply(400, `compile error: ${compileError}`)
    if (isDryRun(request)) return SCRIPT_OK
    const keys = this.keysOf(name)
    const state = this.backend.kvState()
    const staged = state.served.get(keys.staged)
    if (staged !== undefined && this.versions.versionOf(staged) === md5Hex(source)) return jsonReply(200, 'code already in shdict')
    const cas = newestIndex(state, keys.staged)
    const outcome = await this.flow.commit(subjectOf(name), 'set', (writer) => writer.set(keys.staged, source, cas))
    return replyFor(outcome, SCRIPT_OK)
  }

  /** PUT /lua/<name>: the staged source becomes active, with the staged key's index checked in the same txn.
   *  `version` is not a script name but the commit-version key, so PUT /lua/version sets that instead. */
  activate = async (request: AdminRequest): Promise<Reply> => {
    const name = request.param ?? ''
    if (name === 'version') return this.setCommitVersion(request)
    const problem = scriptNameProblem(this.runtime, name)
    if (problem !== null) return statusReply(400, problem)
    const state = this.backend.kvState()
    const staged = state.served.get(this.keysOf(name).staged)
    if (staged === undefined) return jsonReply(200, 'code not found in shdict')
    const activation = this.activationOf(state, name, staged)
    if (activation === null) return jsonReply(200, 'code already loaded')
    const compileError = this.compileError(activation)
    if (compileError !== null) return compileError
    if (isDryRun(request)) return SCRIPT_OK
    const outcome = await this.flow.commit(subjectOf(name), 'txn', (writer) => writer.transaction(activationOps([activation]), activation.keys.active))
    return replyFor(outcome, SCRIPT_OK)
  }

  /** PUT /lua: every staged name whose version differs from the active one, modules first, then `script.*`
   *  names, each group by name (the order Slardar intended), in transactions of at most 32 names. */
  activateAll = async (request: AdminRequest): Promise<Reply> => {
    const state = this.backend.kvState()
    const activations: Activation[] = []
    const stagedPrefix = `${this.folder}/.staged/`
    for (const [key, served] of state.served) {
      if (!key.startsWith(stagedPrefix) || served.value.kind !== 'script') continue
      const activation = this.activationOf(state, served.value.name, served)
      if (activation !== null) activations.push(activation)
    }
    activations.sort(activationOrder)
    // Every compile check first: a bad staged script stops the whole request before anything is written.
    for (const activation of activations) {
      const compileError = this.compileError(activation)
      if (compileError !== null) return compileError
    }
    if (activations.length === 0 || isDryRun(request)) return SCRIPT_OK
    let reply = SCRIPT_OK
    for (const batch of batchesOf(activations)) {
      const subject = subjectOf((batch[0] as Activation).name)
      const last = batch[batch.length - 1] as Activation
      const outcome = await this.flow.commit(subject, 'txn', (writer) => writer.transaction(activationOps(batch), last.keys.active))
      reply = replyFor(outcome, SCRIPT_OK)
      if (outcome.kind === 'failed') return reply
    }
    return reply
  }

  /** PUT /lua/version: the free-form commit version (1–200 characters). */
  private async setCommitVersion(request: AdminRequest): Promise<Reply> {
    if (!isUtf8(request.body)) return statusReply(400, 'invalid version: not valid UTF-8')
    const version = request.body.toString('utf8').trim()
    if (version === '') return EMPTY_BODY
    if ([...version].length > MAX_COMMIT_VERSION_CHARS) {
      return statusReply(400, `invalid version: at most ${MAX_COMMIT_VERSION_CHARS} characters`)
    }
    if (isDryRun(request)) return SCRIPT_OK
    const key = `${this.folder}/version`
    const cas = newestIndex(this.backend.kvState(), key)
    const outcome = await this.flow.commit(`${this.folder}/version`, 'set', (writer) => writer.set(key, Buffer.from(version, 'utf8'), cas))
    return replyFor(outcome, SCRIPT_OK)
  }

  /** DELETE /lua/<name>: both keys in one txn; "ok" for unknown names too (Slardar). */
  remove = async (request: AdminRequest): Promise<Reply> => {
    const name = request.param ?? ''
    const problem = scriptNameProblem(this.runtime, name)
    if (problem !== null) return statusReply(400, problem)
    if (isDryRun(request)) return SCRIPT_OK
    const state = this.backend.kvState()
    const keys = this.keysOf(name)
    // delete-cas at 0 on a key this node does not know deletes nothing if it is absent, and fails if someone
    // created it meanwhile: exactly check-and-set on "absent".
    const ops: TxnOp[] = [
      { verb: 'delete-cas', key: keys.active, index: newestIndex(state, keys.active) },
      { verb: 'delete-cas', key: keys.staged, index: newestIndex(state, keys.staged) },
    ]
    const outcome = await this.flow.commit(subjectOf(name), 'txn', (writer) => writer.transaction(ops, keys.active))
    return replyFor(outcome, SCRIPT_OK)
  }

  private keysOf(name: string): ScriptKeys {
    return { active: `${this.folder}/${name}`, staged: `${this.folder}/.staged/${name}` }
  }

  /** What PUT would write for `name`, or null when the staged version is already active. */
  private activationOf(state: KvState, name: string, staged: ServedKey): Activation | null {
    const keys = this.keysOf(name)
    const active = state.served.get(keys.active)
    if (active !== undefined && this.versions.versionOf(active) === this.versions.versionOf(staged)) return null
    return {
      name,
      keys,
      source: staged.entry.value ?? Buffer.alloc(0),
      activeIndex: newestIndex(state, keys.active),
      stagedIndex: staged.entry.modifyIndex,
    }
  }

  /** Staged keys may also be written straight to Consul, where nobody compiled them; never activate one that
   *  every node would reject. */
  private compileError(activation: Activation): Reply | null {
    const message = this.backend.compileScript(this.runtime, activation.name, activation.source.toString('utf8'))
    return message === null ? null : statusReply(400, `compile error: ${message}`)
  }
}

function subjectOf(name: string): string {
  return `script ${name}`
}

function activationOps(batch: readonly Activation[]): TxnOp[] {
  return batch.flatMap((activation): TxnOp[] => [
    { verb: 'cas', key: activation.keys.active, value: activation.source, index: activation.activeIndex },
    { verb: 'check-index', key: activation.keys.staged, index: activation.stagedIndex },
  ])
}

function activationOrder(a: Activation, b: Activation): number {
  const aIsScript = a.name.startsWith('script.')
  const bIsScript = b.name.startsWith('script.')
  if (aIsScript !== bIsScript) return aIsScript ? 1 : -1
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

/** Consecutive runs of at most ACTIVATIONS_PER_TXN names and ACTIVATION_BYTES_PER_TXN source bytes. */
function batchesOf(activations: readonly Activation[]): Activation[][] {
  const batches: Activation[][] = []
  let current: Activation[] = []
  let bytes = 0
  for (const activation of activations) {
    const isFull = current.length === ACTIVATIONS_PER_TXN || (current.length > 0 && bytes + activation.source.length > ACTIVATION_BYTES_PER_TXN)
    if (isFull) {
      batches.push(current)
      current = []
      bytes = 0
    }
    current.push(activation)
    bytes += activation.source.length
  }
  if (current.length > 0) batches.push(current)
  return batches
}

/** Newest ModifyIndex this node knows for `key` (served or a newer rejected value), 0 when none. */
function newestIndex(state: KvState, key: string): bigint {
  const served = state.served.get(key)?.entry.modifyIndex ?? 0n
  const rejected = state.rejections.get(key)?.modifyIndex ?? 0n
  return rejected > served ? rejected : served
}

/** `/upstreams`, `/upstream/<name>`, `/stream_upstreams` and `/stream_upstream/<port>` (admin-api.md §6).
 *  Owns what these endpoints read from the live KV state (definitions as stored, their ModifyIndex as ETag),
 *  the body rules (empty, decode, object, the `servers` merge, masked secrets, static names, the stream
 *  listener warning) and the exact messages. Validation is checkups' parseUpstreamJson under the KV key;
 *  the Consul write and its outcomes go through write-flow.ts. */

import { isUtf8 } from 'node:buffer'
import JSON5 from 'json5'
import { parseUpstreamJson, type UpstreamDefaults } from '../checkups/index.js'
import type { KvState, ServedKey } from '../consul/apply.js'
import { type KeyLayout, upstreamNameProblem } from '../consul/keys.js'
import type { Logger } from '../log.js'
import type { AdminBackend } from './backend.js'
import {
  EMPTY_BODY, jsonReply, type Reply, statusReply, UPSTREAM_WRITTEN,
} from './replies.js'
import { type AdminRequest, isBlankBody, isDryRun } from './routes.js'
import { displayForm, isJsonObject, isNestedTooDeeply, MAX_NESTING, mergeServersBody, restoreMaskedSecrets } from './upstream-value.js'
import { checkPreconditions, replyFor, type WriteFlow } from './write-flow.js'

const PORT_PATTERN = /^[1-9]\d{0,4}$/

/** HTTP upstreams and stream upstreams differ only in these. */
interface UpstreamFamily {
  readonly isStream: boolean
  /** KV folder below the prefix: `http_upstreams` / `stream_upstreams` (configurable). */
  readonly folder: string
  /** How messages name one: `upstream api`, `stream upstream 3131`. */
  readonly label: string
  /** Null when acceptable, else the 400 message. */
  nameProblem(name: string): string | null
}

export interface UpstreamEndpointsOptions {
  readonly layout: KeyLayout
  readonly upstreamDefaults: UpstreamDefaults
  readonly streamPorts: readonly number[]
}

interface LiveUpstream {
  /** Newest ModifyIndex this node knows for the key: the served one, or a newer rejected one. Null: unknown key. */
  readonly index: bigint | null
  /** The served value as stored (parsed), or null when nothing is served. */
  readonly stored: unknown
}

export class UpstreamEndpoints {
  private readonly http: UpstreamFamily
  private readonly stream: UpstreamFamily

  constructor(
    private readonly backend: AdminBackend,
    private readonly flow: WriteFlow,
    private readonly options: UpstreamEndpointsOptions,
    private readonly log: Logger,
  ) {
    this.http = { isStream: false, folder: options.layout.upstreams_prefix, label: 'upstream', nameProblem: upstreamNameProblem }
    this.stream = {
      isStream: true,
      folder: options.layout.stream_upstreams_prefix,
      label: 'stream upstream',
      nameProblem: (port) => (PORT_PATTERN.test(port) && Number(port) <= 65535 ? null : `invalid port "${port}"`),
    }
  }

  listHttp = (): Reply => this.list(this.http)
  listStream = (): Reply => this.list(this.stream)
  getHttp = (request: AdminRequest): Reply => this.get(this.http, request.param ?? '')
  getStream = (request: AdminRequest): Reply => this.get(this.stream, request.param ?? '')
  writeHttp = (request: AdminRequest): Promise<Reply> => this.write(this.http, request)
  writeStream = (request: AdminRequest): Promise<Reply> => this.write(this.stream, request)
  deleteHttp = (request: AdminRequest): Promise<Reply> => this.delete(this.http, request)
  deleteStream = (request: AdminRequest): Promise<Reply> => this.delete(this.stream, request)

  private list(family: UpstreamFamily): Reply {
    const definitions = new Map<string, unknown>()
    const folder = `${family.folder}/`
    for (const [key, served] of this.backend.kvState().served) {
      if (served.value.kind === 'upstream' && key.startsWith(folder)) definitions.set(key.slice(folder.length), storedValueOf(served))
    }
    // The config file wins over KV on a name clash, as in /status (consul.md §2).
    if (!family.isStream) for (const [name, value] of this.backend.staticUpstreams()) definitions.set(name, value)
    const names = [...definitions.keys()].sort(family.isStream ? (a, b) => Number(a) - Number(b) : undefined)
    const body: Record<string, unknown> = {}
    for (const name of names) Object.defineProperty(body, name, { value: displayForm(definitions.get(name)), enumerable: true })
    return jsonReply(200, body)
  }

  private get(family: UpstreamFamily, name: string): Reply {
    const problem = family.nameProblem(name)
    if (problem !== null) return statusReply(400, problem)
    const staticValue = family.isStream ? undefined : this.backend.staticUpstreams().get(name)
    if (staticValue !== undefined) return jsonReply(200, displayForm(staticValue))
    const state = this.backend.kvState()
    const served = state.served.get(keyOf(family, name))
    if (served === undefined) return notFound(family, name)
    return jsonReply(200, displayForm(storedValueOf(served)), { ETag: `"${liveOf(state, keyOf(family, name)).index}"` })
  }

  private async write(family: UpstreamFamily, request: AdminRequest): Promise<Reply> {
    const name = request.param ?? ''
    const problem = family.nameProblem(name)
    if (problem !== null) return statusReply(400, problem)
    if (this.isStatic(family, name)) return staticRefusal(name)
    const key = keyOf(family, name)
    const live = liveOf(this.backend.kvState(), key)
    const precondition = checkPreconditions(request.headers, live.index, subjectOf(family, name))
    if (precondition.kind === 'refused') return precondition.reply
    const built = this.buildValue(family, key, request.body, precondition.isCreateOnly ? null : live.stored)
    if (!built.ok) return built.reply
    if (isDryRun(request)) return jsonReply(200, { status: 200, msg: 'dry run: valid', upstream: displayForm(built.value) })
    if (family.isStream && !this.options.streamPorts.includes(Number(name))) {
      this.log.warn({ port: Number(name) }, `stream upstream ${name} written, but no stream listener is on port ${name} (stream.listen)`)
    }
    const text = Buffer.from(JSON.stringify(built.value), 'utf8')
    const cas = precondition.isCreateOnly ? 0n : (live.index ?? 0n)
    const outcome = await this.flow.commit(subjectOf(family, name), 'set', (writer) => writer.set(key, text, cas))
    return replyFor(outcome, UPSTREAM_WRITTEN)
  }

  private async delete(family: UpstreamFamily, request: AdminRequest): Promise<Reply> {
    const name = request.param ?? ''
    const problem = family.nameProblem(name)
    if (problem !== null) return statusReply(400, problem)
    if (this.isStatic(family, name)) return staticRefusal(name)
    const key = keyOf(family, name)
    const live = liveOf(this.backend.kvState(), key)
    // Slardar's status and message, answered without calling Consul (consul.md §8).
    if (live.index === null) return statusReply(400, `${family.label} ${name} not found`)
    const precondition = checkPreconditions(request.headers, live.index, subjectOf(family, name))
    if (precondition.kind === 'refused') return precondition.reply
    const cas = live.index
    // Recorded before the call: the watch may apply the deletion before Consul's answer reaches us.
    this.backend.recordAdminDeletion(key, cas)
    const outcome = await this.flow.commit(subjectOf(family, name), 'delete', (writer) => writer.delete(key, cas))
    return replyFor(outcome, UPSTREAM_WRITTEN)
  }

  private isStatic(family: UpstreamFamily, name: string): boolean {
    return !family.isStream && this.backend.staticUpstreams().has(name)
  }

  /** §6 body rules, then upstreams.md §1.4 under the KV key. `stored` is the base for the `servers` merge. */
  private buildValue(family: UpstreamFamily, key: string, body: Buffer, stored: unknown): { ok: true; value: unknown } | { ok: false; reply: Reply } {
    if (isBlankBody(body)) return { ok: false, reply: EMPTY_BODY }
    if (!isUtf8(body)) return { ok: false, reply: statusReply(400, 'decode body error: the body is not valid UTF-8') }
    let parsed: unknown
    try {
      parsed = JSON5.parse(body.toString('utf8'))
    } catch (err) {
      return { ok: false, reply: statusReply(400, `decode body error: ${decodeMessage(err)}`) }
    }
    if (!isJsonObject(parsed)) return { ok: false, reply: statusReply(400, `${key}: value must be an object`) }
    if (isNestedTooDeeply(parsed)) {
      return { ok: false, reply: statusReply(400, `${key}: value is nested too deeply (at most ${MAX_NESTING} levels)`) }
    }
    const restored = restoreMaskedSecrets(parsed, stored)
    if (!restored.ok) {
      return { ok: false, reply: statusReply(400, `${key}: ${restored.path} is "******" but there is no stored value to keep; send the real value`) }
    }
    const fields = restored.value as Record<string, unknown>
    const isServersForm = Object.hasOwn(fields, 'servers') && !Object.hasOwn(fields, 'cluster')
    const value = isServersForm ? mergeServersBody(stored, fields) : fields
    const result = parseUpstreamJson(key, value, this.options.upstreamDefaults, { stream: family.isStream })
    if (!result.ok) return { ok: false, reply: statusReply(400, result.message) }
    return { ok: true, value }
  }
}

function keyOf(family: UpstreamFamily, name: string): string {
  return `${family.folder}/${name}`
}

function subjectOf(family: UpstreamFamily, name: string): string {
  return `${family.label} ${name}`
}

function notFound(family: UpstreamFamily, name: string): Reply {
  return statusReply(404, `${family.label} ${name} not found`)
}

function staticRefusal(name: string): Reply {
  return statusReply(409, `upstream ${name} is defined in the config file and cannot be changed through the API`)
}

function liveOf(state: KvState, key: string): LiveUpstream {
  const served = state.served.get(key)
  const rejected = state.rejections.get(key)
  const servedIndex = served?.entry.modifyIndex ?? null
  const rejectedIndex = rejected?.modifyIndex ?? null
  // A rejected newer value is what Consul holds now: writing over it needs its index, and a client fixing it
  // must not be told "changed by someone else" forever.
  const index = rejectedIndex !== null && (servedIndex === null || rejectedIndex > servedIndex) ? rejectedIndex : servedIndex
  return { index, stored: served === undefined ? null : storedValueOf(served) }
}

/** The value as stored in KV. Served values passed validation, so they parse. */
function storedValueOf(served: ServedKey): unknown {
  return JSON5.parse((served.entry.value ?? Buffer.alloc(0)).toString('utf8'))
}

/** json5's message without its `JSON5: ` prefix; it ends with `at <line>:<column>`. */
function decodeMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.replace(/^JSON5: /, '')
}

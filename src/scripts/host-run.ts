/** One request's scripts (scripts.md §4, contract.ts): Lua `script.<host>` first, then JS `onRequest`, merged into
 *  one RequestDecision; then JS `onResponse` and `onLog`. Also the host side of the JS `ctx` (CtxHost): the
 *  request as the scripts changed it, and the answer they chose.
 *  - The host entry (which versions run for a host) is fixed when the request begins; installs never swap it.
 *  - JS sees the request as Lua left it (headers, path), and Lua's `ngx.header` values apply to a JS-generated
 *    response too, as to any response.
 *  - Hook calls: scripts.timeout_ms per synchronous run (the realm's budget check), scripts.async_timeout_ms for a
 *    hook's promise, after which it is abandoned and later changes through its ctx are refused.
 *  Owns: per-request state and decisions. Leaves versions to store.ts, the JS API to js-realm-prelude.ts. */

import type { HeaderChange, LuaChunk, LuaRuntime, RequestChanges, ScriptOutcome } from '../../lua-compat/index.js'
import type { Logger } from '../log.js'
import type {
  HostScripts, RequestDecision, ScriptFailure, ScriptRequest, ScriptResponse, ScriptRun,
} from './contract.js'
import { answerForExit } from './errno.js'
import type { ScriptErrorCounts } from './error-counts.js'
import { SCRIPT_ERROR, SCRIPT_TIMEOUT } from './errors.js'
import type { HookFunction, JsInstance } from './js-modules.js'
import { PHASE, type CtxHost } from './js-realm-prelude.js'
import { describeThrown, type JsRealm } from './js-realm.js'
import { FRAMING_HEADERS, isBodylessStatus } from './responses.js'

const EMPTY_CHANGES: RequestChanges = Object.freeze({ target: null, requestHeaders: null, responseHeaders: null })
const callWithThis: (fn: HookFunction, thisArg: unknown, ctx: object) => unknown =
  Function.prototype.call.bind(Function.prototype.call) as never

/** What every host entry of one store shares. */
export interface RunServices {
  readonly lua: LuaRuntime | null
  readonly realm: JsRealm | null
  readonly asyncTimeoutMs: number
  /** Where onLog failures go (they never reach the client). */
  readonly log: Logger
  /** Every failure a request's script ends with is counted here (`slardar_script_errors_total`). */
  readonly errorCounts: ScriptErrorCounts
}

/** A compiled Lua script version. Requests pin it from begin() to the end of their Lua run, so an install that
 *  replaces it frees the chunk only once no request can still run it. */
export class LuaScriptVersion {
  private pins = 0
  private isRetired = false

  constructor(readonly chunk: LuaChunk, private readonly runtime: LuaRuntime, readonly loadedAtMs: number) {}

  get name(): string {
    return this.chunk.name
  }

  get version(): string {
    return this.chunk.version
  }

  pin(): void {
    this.pins++
  }

  unpin(): void {
    if (--this.pins === 0 && this.isRetired) this.runtime.release(this.chunk)
  }

  retire(): void {
    if (this.isRetired) return
    this.isRetired = true
    if (this.pins === 0) this.runtime.release(this.chunk)
  }
}

/** The scripts of one routing host at one moment; immutable, replaced whole by an install. */
export class HostEntry implements HostScripts {
  readonly wantsResponse: boolean
  readonly wantsLog: boolean

  constructor(readonly services: RunServices, readonly lua: LuaScriptVersion | null, readonly js: JsInstance | null) {
    this.wantsResponse = js?.hooks?.onResponse != null
    this.wantsLog = js?.hooks?.onLog != null
  }

  begin(request: ScriptRequest): ScriptRun {
    this.lua?.pin()
    return new HostRun(this, request)
  }
}

/** Builds the failure a request ends with, and counts it: call it once per failure that is actually returned. */
function failureOf(services: RunServices, runtime: 'lua' | 'js', script: string, version: string, isTimeout: boolean,
  message: string, stack: string | null): ScriptFailure {
  services.errorCounts.count(runtime, script, isTimeout ? 'timeout' : 'error')
  const code = isTimeout ? SCRIPT_TIMEOUT.xErrorCode : SCRIPT_ERROR.xErrorCode
  return { kind: 'error', xErrorCode: code, runtime, script, version, message, stack }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
}

export class HostRun implements ScriptRun, CtxHost {
  readonly wantsResponse: boolean
  readonly wantsLog: boolean
  phase: number = PHASE.none
  headerGeneration = 0
  targetGeneration = 0
  responseGeneration = 0
  isAnswered = false
  private luaChanges: RequestChanges = EMPTY_CHANGES
  private luaErrorCode: number | null = null
  private isLuaPinned: boolean
  private target: string | null = null
  private requestHeaders: Map<string, HeaderChange> | null = null
  private upstream: string | null = null
  private exitCode: number | null = null
  private answer: RequestDecision | null = null
  private ctx: object | null = null
  private response: ScriptResponse | null = null
  private accessLog: Readonly<Record<string, string | number>> | null = null
  private logger: Logger | null = null

  constructor(private readonly entry: HostEntry, readonly view: ScriptRequest) {
    this.wantsResponse = entry.wantsResponse
    this.wantsLog = entry.wantsLog
    this.isLuaPinned = entry.lua !== null
  }

  // ---- ScriptRun ----

  onRequest(): RequestDecision | Promise<RequestDecision> {
    const lua = this.entry.lua
    const runtime = this.entry.services.lua
    if (lua === null || runtime === null) return this.runJsRequest()
    let outcome: ScriptOutcome | Promise<ScriptOutcome>
    try {
      outcome = runtime.runRequestScript(lua.chunk, this.view)
    } catch (err) {
      this.unpinLua()
      const { message, stack } = describeThrown(err)
      return failureOf(this.entry.services, 'lua', lua.name, lua.version, false, message, stack)
    }
    if (outcome instanceof Promise) {
      return outcome.then((settled) => this.afterLua(settled), (err: unknown) => {
        this.unpinLua()
        const { message, stack } = describeThrown(err)
        return failureOf(this.entry.services, 'lua', lua.name, lua.version, false, message, stack)
      })
    }
    return this.afterLua(outcome)
  }

  onResponse(response: ScriptResponse): ScriptFailure | null | Promise<ScriptFailure | null> {
    const hook = this.entry.js?.hooks?.onResponse
    if (hook == null) return null
    this.response = response
    return this.callHook(hook, PHASE.response)
  }

  onLog(fields: Readonly<Record<string, string | number>>): void {
    const hook = this.entry.js?.hooks?.onLog
    if (hook == null) return
    this.accessLog = fields
    const result = this.callHook(hook, PHASE.log)
    if (result instanceof Promise) void result.then((failure) => this.logHookFailure(failure))
    else this.logHookFailure(result)
  }

  // ---- the Lua half ----

  private unpinLua(): void {
    if (!this.isLuaPinned) return
    this.isLuaPinned = false
    this.entry.lua?.unpin()
  }

  private afterLua(outcome: ScriptOutcome): RequestDecision | Promise<RequestDecision> {
    this.unpinLua()
    switch (outcome.kind) {
      case 'continue':
        this.luaChanges = outcome.changes
        this.luaErrorCode = outcome.xErrorCode
        return this.runJsRequest()
      case 'respond':
      case 'close':
        return outcome
      case 'error':
        return failureOf(this.entry.services, 'lua', outcome.script, outcome.version, outcome.xErrorCode === SCRIPT_TIMEOUT.xErrorCode,
          outcome.message, outcome.stack)
    }
  }

  // ---- the JS half ----

  private runJsRequest(): RequestDecision | Promise<RequestDecision> {
    const hook = this.entry.js?.hooks?.onRequest
    if (hook == null) return this.requestDecision()
    const result = this.callHook(hook, PHASE.request)
    if (result === null) return this.requestDecision()
    if (result instanceof Promise) return result.then((failure) => failure ?? this.requestDecision())
    return result
  }

  private requestDecision(): RequestDecision {
    if (this.answer !== null) return this.answer
    const lua = this.luaChanges
    const changes = this.target === null && this.requestHeaders === null
      ? lua
      : { target: this.target ?? lua.target, requestHeaders: this.requestHeaders ?? lua.requestHeaders, responseHeaders: lua.responseHeaders }
    return { kind: 'continue', changes, upstream: this.upstream, xErrorCode: this.exitCode ?? this.luaErrorCode }
  }

  /** Calls one hook with this request's ctx. Null when it finished, a failure, or a promise of either. */
  private callHook(hook: HookFunction, phase: number): ScriptFailure | null | Promise<ScriptFailure | null> {
    const js = this.entry.js as JsInstance
    const realm = this.entry.services.realm as JsRealm
    this.phase = phase
    this.ctx ??= realm.api.newCtx(this)
    realm.startRun()
    let result: unknown
    try {
      result = callWithThis(hook, js.exports, this.ctx)
      if (!isThenable(result)) {
        this.phase = PHASE.none
        return realm.budget.isTripped ? this.jsFailure(undefined, true) : null
      }
    } catch (err) {
      this.phase = PHASE.none
      return this.jsFailure(err, realm.budget.isTripped || realm.isTimeout(err))
    }
    if (realm.budget.isTripped) {
      this.phase = PHASE.none
      return this.jsFailure(undefined, true)
    }
    return this.awaitHook(result, realm)
  }

  /** Waits for a hook's promise, at most scripts.async_timeout_ms; then the hook is abandoned (phase none, so any
   *  later change through its ctx throws) and the request fails with 50000002. */
  private awaitHook(result: PromiseLike<unknown>, realm: JsRealm): Promise<ScriptFailure | null> {
    const asyncTimeoutMs = this.entry.services.asyncTimeoutMs
    return new Promise((resolve) => {
      let isSettled = false
      const settle = (failure: ScriptFailure | null): void => {
        if (isSettled) return
        isSettled = true
        clearTimeout(timer)
        this.phase = PHASE.none
        resolve(failure)
      }
      const timer = setTimeout(() => {
        const js = this.entry.js as JsInstance
        settle(failureOf(this.entry.services, 'js', js.name, js.version, true,
          `script timeout: ${js.name} did not finish within ${asyncTimeoutMs} ms (scripts.async_timeout_ms)`, null))
      }, asyncTimeoutMs)
      // The realm adopts the promise, so script code never receives a host function to call.
      // A promise that settles after the timeout was already counted as one; building its failure would count twice.
      realm.api.observe(result, (isFulfilled, reason) => {
        if (!isSettled) settle(isFulfilled ? null : this.jsFailure(reason, realm.isTimeout(reason)))
      })
    })
  }

  private jsFailure(thrown: unknown, isTimeout: boolean): ScriptFailure {
    const js = this.entry.js as JsInstance
    if (isTimeout && (thrown === undefined || (this.entry.services.realm as JsRealm).isTimeout(thrown))) {
      const budgetMs = (this.entry.services.realm as JsRealm).budgetMs
      return failureOf(this.entry.services, 'js', js.name, js.version, true,
        `script timeout: ${js.name} ran for more than ${budgetMs} ms without finishing (scripts.timeout_ms)`, null)
    }
    const { message, stack } = describeThrown(thrown)
    return failureOf(this.entry.services, 'js', js.name, js.version, isTimeout, message, stack)
  }

  private logHookFailure(failure: ScriptFailure | null): void {
    if (failure === null) return
    this.entry.services.log.error({
      script: failure.script, version: failure.version, request_id: this.view.requestId, x_error_code: failure.xErrorCode,
      err: { message: failure.message, stack: failure.stack },
    }, `js onLog of ${failure.script} failed: ${failure.message}`)
  }

  // ---- CtxHost: the request as the scripts changed it ----

  currentTarget(): string {
    return this.target ?? this.luaChanges.target ?? this.view.target
  }

  headerPairs(): readonly string[] {
    const changes = this.requestHeaders ?? this.luaChanges.requestHeaders
    const raw = this.view.rawHeaders
    const pairs: string[] = []
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const lower = (raw[i] as string).toLowerCase()
      if (changes !== null && changes.has(lower)) continue
      pairs.push(lower, raw[i + 1] as string)
    }
    if (changes !== null) {
      for (const [lower, change] of changes) {
        if (change.value === null) continue
        if (typeof change.value === 'string') pairs.push(lower, change.value)
        else for (const value of change.value) pairs.push(lower, value)
      }
    }
    return pairs
  }

  setRequestHeader(name: string, value: string | readonly string[] | null): void {
    this.requestHeaders ??= new Map(this.luaChanges.requestHeaders ?? [])
    this.requestHeaders.set(name.toLowerCase(), { name, value: value === null || typeof value === 'string' ? value : [...value] })
    this.headerGeneration++
  }

  setTarget(target: string): void {
    this.target = target
    this.targetGeneration++
  }

  upstreamName(): string {
    return this.upstream ?? this.view.host
  }

  setUpstream(name: string): void {
    this.upstream = name
  }

  respond(status: number, body: string | ArrayBufferView, contentType: string, headers: readonly string[]): void {
    const bytes = typeof body === 'string'
      ? Buffer.from(body, 'utf8')
      : Buffer.from(new Uint8Array(body.buffer, body.byteOffset, body.byteLength))
    const merged = new Map<string, readonly [string, string | readonly string[]]>()
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i] as string
      const lower = name.toLowerCase()
      if (FRAMING_HEADERS.has(lower)) continue
      const value = headers[i + 1] as string
      const previous = merged.get(lower)
      if (previous === undefined) merged.set(lower, [name, value])
      else merged.set(lower, [previous[0], [...(typeof previous[1] === 'string' ? [previous[1]] : previous[1]), value]])
    }
    if (!merged.has('content-type')) merged.set('content-type', ['Content-Type', contentType])
    this.answerWith(status, bytes, merged, [])
  }

  exit(code: number, msg: string, httpcode: number): void {
    this.exitCode = code
    this.isAnswered = true
    const answer = answerForExit(code, msg, httpcode)
    if (answer.kind === 'continue') return
    if (answer.kind === 'close') {
      this.answer = { kind: 'close', xErrorCode: code }
      return
    }
    const merged = new Map<string, readonly [string, string | readonly string[]]>()
    for (const [name, value] of answer.headers) merged.set(name.toLowerCase(), [name, value])
    this.answerWith(answer.status, answer.body, merged, answer.forcedHeaders)
  }

  /** Records a generated response: `merged` defaults, then Lua's ngx.header values (they apply to whatever response
   *  is sent), then `forced`, then Content-Length, which is the proxy's to get right. */
  private answerWith(status: number, body: Buffer, merged: Map<string, readonly [string, string | readonly string[]]>,
    forced: ReadonlyArray<readonly [string, string]>): void {
    const luaHeaders = this.luaChanges.responseHeaders
    if (luaHeaders !== null) {
      for (const [lower, change] of luaHeaders) {
        if (change.value === null) merged.delete(lower)
        else merged.set(lower, [change.name, change.value])
      }
    }
    for (const [name, value] of forced) merged.set(name.toLowerCase(), [name, value])
    const isBodyless = isBodylessStatus(status)
    if (!isBodyless) merged.set('content-length', ['Content-Length', String(body.length)])
    const headers: Record<string, string | readonly string[]> = {}
    for (const [name, value] of merged.values()) headers[name] = value
    this.isAnswered = true
    this.answer = { kind: 'respond', status, headers, body: isBodyless ? Buffer.alloc(0) : body, xErrorCode: this.exitCode }
  }

  responseStatus(): number {
    return (this.response as ScriptResponse).status
  }

  responseHeaders(): Readonly<Record<string, string | readonly string[]>> {
    return (this.response as ScriptResponse).headers
  }

  setResponseHeader(lowerName: string, value: string | readonly string[] | null): void {
    if (FRAMING_HEADERS.has(lowerName)) return
    const headers = (this.response as ScriptResponse).headers
    if (value === null) delete headers[lowerName]
    else headers[lowerName] = typeof value === 'string' ? value : [...value]
    this.responseGeneration++
  }

  accessLogFields(): Readonly<Record<string, string | number>> {
    return this.accessLog as Readonly<Record<string, string | number>>
  }

  requestLogger(): Logger {
    this.logger ??= (this.entry.js as JsInstance).log.child({ request_id: this.view.requestId })
    return this.logger
  }
}

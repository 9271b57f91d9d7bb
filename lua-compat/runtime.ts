/** The Lua runtime of one worker: one Lua state (never one per request), the host functions behind the prelude's
 *  API, compile, per-request runs as coroutines with their budgets (scripts.md §9), suspensions (ngx.sleep,
 *  ngx.req.read_body), and lua/ modules with dependent reload (§3).
 *  Owns: the registry references, the thread pool, the regex cache, the shared dicts, the module table.
 *  Leaves to others: the Lua API itself (prelude.ts), request semantics and outcomes (request-state.ts), wasm memory
 *  (wasm-lua.ts); where sources come from, when to compile and what to do with an outcome (src/scripts, src/proxy). */

import { performance } from 'node:perf_hooks'
import { createHash } from 'node:crypto'
import * as codecs from './codecs.js'
import { LuaRuntimeError, SCRIPT_ERROR, SCRIPT_TIMEOUT } from './errors.js'
import { findLiteralRegexCalls } from './lua-source-scan.js'
import { LogLevel, PRELUDE_NAME, PRELUDE_SOURCE, Suspend } from './prelude.js'
import { checkPattern, RegexEngine, RegexFailure, type CompiledRegex } from './regex.js'
import { RequestState } from './request-state.js'
import { serverToken } from './responses.js'
import { SharedDict, type DictValue, type SetMode } from './shared-dict.js'
import type {
  CheckResult, CompileResult, LuaChunk, LuaRuntimeOptions, ModuleInstallReport, ModuleLoadError, RequestView,
  ScriptOutcome,
} from './types.js'
import {
  LUA_OK, LUA_TBOOLEAN, LUA_TLIGHTUSERDATA, LUA_TNIL, LUA_TNUMBER, LUA_TSTRING, LUA_YIELD, WasmLua,
  type HostFunction, type JsonLike,
} from './wasm-lua.js'

/** The budget hook runs every this many VM instructions (scripts.md §9). */
const HOOK_INSTRUCTIONS = 1000
/** Idle request threads kept for reuse; creating one costs an allocation and a registry slot. */
const THREAD_POOL_SIZE = 64
/** Prepended on the chunk's first line, so line numbers stay those of the source. */
const SCRIPT_PREFIX = 'local _ENV = ...;'
const SET_MODES: readonly SetMode[] = ['set', 'add', 'replace']
const JSON_NULL = 0

/** A compiled script.<host> version; the registry holds its function until release(). */
class CompiledChunk implements LuaChunk {
  isReleased = false
  constructor(readonly name: string, readonly version: string, readonly ref: number, readonly refKey: bigint,
    readonly owner: LuaRuntime) {}
}

interface PooledThread {
  readonly L: number
  readonly ref: number
}

/** One runRequestScript call. */
class ScriptRun {
  isDone = false
  /** The thread stopped inside the script (yield or error) and must be reset before reuse. */
  isThreadDirty = false
  resolve: ((outcome: ScriptOutcome) => void) | null = null
  asyncTimer: NodeJS.Timeout | null = null
  /** The pending wake-up of a suspended script: a timer for ngx.sleep(s > 0), an immediate for a bare yield. */
  sleepTimer: NodeJS.Timeout | null = null
  turnImmediate: NodeJS.Immediate | null = null
  /** Monotonic start, taken with the first resume's deadline (one clock read per run). */
  startedMs = -1
  constructor(readonly state: RequestState, readonly thread: PooledThread) {}
}

interface ModuleSource {
  readonly source: string
  readonly version: string
}

function md5(source: string): string {
  return createHash('md5').update(source, 'utf8').digest('hex')
}

function isJsonLike(value: unknown): value is JsonLike {
  return value === null || ['boolean', 'number', 'string', 'object'].includes(typeof value)
}

export class LuaRuntime {
  private readonly L: number
  private readonly suspendPtr: number
  private readonly emptyArrayPtr: number
  private readonly nresPtr: number
  private readonly runRequestRef: bigint
  private readonly reloadModuleRef: bigint
  private readonly unloadModuleRef: bigint
  private readonly sandboxRef: bigint
  private readonly regex: RegexEngine
  private readonly dicts = new Map<string, SharedDict>()
  private readonly nowMs: () => number
  private readonly token: string
  private readonly threadPool: PooledThread[] = []
  private readonly suspendedRuns = new Set<ScriptRun>()
  private current: ScriptRun | null = null
  /** Monotonic deadline of the code running now; Infinity while no Lua code runs. */
  private deadlineMs = Infinity
  private isOverBudget = false
  private modules = new Map<string, ModuleSource>()
  /** Loaded module -> the version that is live in Lua. */
  private readonly loadedModules = new Map<string, string>()
  /** Module -> the modules it required while its top-level code ran. */
  private readonly dependencies = new Map<string, Set<string>>()
  /** Module -> the version handed to Lua by module_source and not yet confirmed by module_loaded. */
  private readonly loadingVersions = new Map<string, string>()
  private readonly reportedLoadErrors = new Set<string>()
  private readonly configCache = new Map<string, { value: object; ref: number }>()
  private isClosed = false

  private constructor(private readonly lua: WasmLua, private readonly options: LuaRuntimeOptions) {
    this.L = lua.L
    this.nowMs = options.nowMs ?? Date.now
    this.token = serverToken(options.productVersion)
    this.regex = new RegexEngine(options.regexCacheSize)
    for (const [name, maxEntries] of Object.entries(options.sharedDicts)) {
      this.dicts.set(name, new SharedDict(name, maxEntries, this.nowMs))
    }
    // Two distinct addresses that no Lua code can forge: the suspension marker and cjson.empty_array.
    this.suspendPtr = lua.malloc(8)
    this.emptyArrayPtr = this.suspendPtr + 4
    this.nresPtr = lua.malloc(4)
    lua.setCountHook(this.onInstructionCount, HOOK_INSTRUCTIONS)

    const L = this.L
    const loadError = lua.load(L, PRELUDE_SOURCE, PRELUDE_NAME)
    if (loadError !== null) throw new LuaRuntimeError(`prelude does not compile: ${loadError}`)
    lua.pushFunctionTable(L, this.hostFunctions(), PRELUDE_NAME)
    lua.pushLightUserdata(L, JSON_NULL)
    lua.pushLightUserdata(L, this.suspendPtr)
    lua.pushLightUserdata(L, this.emptyArrayPtr)
    lua.pushJson(L, {
      worker_id: options.workerId,
      worker_count: options.workerCount,
      pid: process.pid,
      version: options.productVersion,
      dicts: [...this.dicts.keys()],
    }, JSON_NULL)
    this.deadlineMs = performance.now() + 10 * options.timeoutMs + 1000
    const rc = lua.pcall(L, 5, 4)
    this.deadlineMs = Infinity
    if (rc !== LUA_OK) throw new LuaRuntimeError(`prelude failed: ${lua.describe(L, -1)}`)
    this.sandboxRef = BigInt(lua.ref(L))
    this.unloadModuleRef = BigInt(lua.ref(L))
    this.reloadModuleRef = BigInt(lua.ref(L))
    this.runRequestRef = BigInt(lua.ref(L))
  }

  static async create(options: LuaRuntimeOptions): Promise<LuaRuntime> {
    const lua = await WasmLua.create()
    try {
      return new LuaRuntime(lua, options)
    } catch (err) {
      lua.close()
      throw err
    }
  }

  // ---- budgets ----

  /** Count hook: past the deadline, suspend the coroutine out of the script; a yield cannot be caught by pcall.
   *  Where the script cannot yield (inside a C function's callback), raise instead; once over budget every later
   *  check fires again, so catching that error does not let the script go on. */
  private readonly onInstructionCount = (L: number): void => {
    if (performance.now() <= this.deadlineMs) return
    this.isOverBudget = true
    if (this.lua.isYieldable(L)) this.lua.yieldFromHook(L)
    else this.lua.raise(L, 'script timeout')
  }

  // ---- compile ----

  /** Parses a script.<host> source (nothing runs) and keeps the compiled chunk. Literal ngx.re patterns are
   *  translated now, so an unsupported pattern fails here with "<name>:<line>: pcre syntax not supported: ...". */
  compile(name: string, source: string): CompileResult {
    this.assertOpen()
    const L = this.L
    const syntaxError = this.lua.load(L, SCRIPT_PREFIX + source, name)
    if (syntaxError !== null) return { ok: false, error: syntaxError }
    const regexError = checkLiteralPatterns(name, source)
    if (regexError !== null) {
      this.lua.settop(L, -2)
      return { ok: false, error: regexError }
    }
    // The chunk's own _ENV upvalue is never used (the prefix shadows it); point it at the sandbox anyway.
    this.lua.pushRef(L, this.sandboxRef)
    this.lua.setUpvalue(L, -2, 1)
    const ref = this.lua.ref(L)
    return { ok: true, chunk: new CompiledChunk(name, md5(source), ref, BigInt(ref), this) }
  }

  /** The compile check for any source, script or module (admin POST, the watcher): parse plus literal patterns. */
  check(name: string, source: string): CheckResult {
    this.assertOpen()
    const syntaxError = this.lua.load(this.L, source, name)
    if (syntaxError !== null) return { ok: false, error: syntaxError }
    this.lua.settop(this.L, -2)
    const regexError = checkLiteralPatterns(name, source)
    return regexError === null ? { ok: true } : { ok: false, error: regexError }
  }

  /** Frees a chunk once no new request will use it; requests already running keep it alive. */
  release(chunk: LuaChunk): void {
    const compiled = this.ownChunk(chunk)
    compiled.isReleased = true
    this.lua.unref(compiled.ref)
  }

  private ownChunk(chunk: LuaChunk): CompiledChunk {
    if (!(chunk instanceof CompiledChunk) || chunk.owner !== this) {
      throw new LuaRuntimeError(`chunk ${chunk.name} was not compiled by this runtime`)
    }
    if (chunk.isReleased) throw new LuaRuntimeError(`chunk ${chunk.name}@${chunk.version} was released`)
    return chunk
  }

  // ---- requests ----

  /** Runs a script.<host> chunk for one request. Returns the outcome directly when the script finishes without
   *  suspending (the common case, no promise allocated), else a promise that settles within asyncTimeoutMs. */
  runRequestScript(chunk: LuaChunk, view: RequestView): ScriptOutcome | Promise<ScriptOutcome> {
    this.assertOpen()
    const compiled = this.ownChunk(chunk)
    const run = new ScriptRun(new RequestState(view, chunk, this.token), this.acquireThread())
    const T = run.thread.L
    this.lua.pushRef(T, this.runRequestRef)
    this.lua.pushRef(T, compiled.refKey)
    return this.drive(run, 1) ?? this.suspended(run)
  }

  /** Resumes until the script ends (returns its outcome) or waits on something (returns null, work scheduled). */
  private drive(run: ScriptRun, firstArgs: number): ScriptOutcome | null {
    const lua = this.lua
    const T = run.thread.L
    let nargs = firstArgs
    for (;;) {
      const nowMs = performance.now()
      if (run.startedMs < 0) run.startedMs = nowMs
      this.current = run
      this.isOverBudget = false
      this.deadlineMs = nowMs + this.options.timeoutMs
      const rc = lua.resume(T, nargs, this.nresPtr)
      this.deadlineMs = Infinity
      this.current = null
      nargs = 0
      run.isThreadDirty = rc !== LUA_OK
      if (this.isOverBudget) {
        return this.end(run, this.timeoutOutcome(run, `ran for more than ${this.options.timeoutMs} ms without suspending (scripts.timeout_ms)`))
      }
      if (rc === LUA_OK) return this.end(run, run.state.finishNormally())
      if (rc !== LUA_YIELD) {
        const message = lua.describe(T, -1)
        return this.end(run, this.errorOutcome(run, message, lua.traceback(T, message)))
      }
      const nres = lua.readInt32(this.nresPtr)
      const base = lua.top(T) - nres
      const isOurs = nres >= 2 && lua.type(T, base + 1) === LUA_TLIGHTUSERDATA && lua.lightUserdata(T, base + 1) === this.suspendPtr
      const kind: number = isOurs ? lua.number(T, base + 2) : Suspend.Yield
      const state = run.state
      switch (kind) {
        case Suspend.Exit:
          return this.end(run, state.finishExit(lua.number(T, base + 3)))
        case Suspend.Redirect:
          return this.end(run, state.finishRedirect(lua.binary(T, base + 3) ?? '', lua.number(T, base + 4)))
        case Suspend.ErrnoExit:
          return this.end(run, state.finishErrnoExit(lua.number(T, base + 3), lua.binary(T, base + 4) ?? '',
            lua.number(T, base + 5)))
        case Suspend.Sleep: {
          // Never longer than the async budget, which ends the run first (and setTimeout caps at 2^31-1 ms).
          const delayMs = Math.min(lua.number(T, base + 3) * 1000, this.options.asyncTimeoutMs + 1)
          lua.settop(T, base)
          if (delayMs > 0) run.sleepTimer = setTimeout(() => this.proceed(run), delayMs)
          else run.turnImmediate = setImmediate(() => this.proceed(run))
          return null
        }
        case Suspend.ReadBody: {
          lua.settop(T, base)
          if (state.body !== undefined) continue
          const failed = (err: unknown): ScriptOutcome => this.end(run, this.errorOutcome(run, `reading the request body failed: ${String(err)}`, null))
          let reading: Promise<Buffer | null>
          try {
            reading = state.view.readBody()
          } catch (err) {
            return failed(err)
          }
          reading.then((body) => {
            if (run.isDone) return
            state.body = body
            this.proceed(run)
          }, (err: unknown) => { if (!run.isDone) failed(err) })
          return null
        }
        default:
          lua.settop(T, base)
          run.turnImmediate = setImmediate(() => this.proceed(run))
          return null
      }
    }
  }

  private suspended(run: ScriptRun): Promise<ScriptOutcome> {
    this.suspendedRuns.add(run)
    return new Promise((resolve) => {
      run.resolve = resolve
      const remainingMs = this.options.asyncTimeoutMs - (performance.now() - run.startedMs)
      run.asyncTimer = setTimeout(() => {
        this.end(run, this.timeoutOutcome(run, `did not finish within ${this.options.asyncTimeoutMs} ms (scripts.async_timeout_ms)`))
      }, Math.max(0, remainingMs))
    })
  }

  private proceed(run: ScriptRun): void {
    run.sleepTimer = null
    run.turnImmediate = null
    if (!run.isDone) this.drive(run, 0)
  }

  /** Settles a run once: stops its timers, returns its thread to the pool, resolves a waiting caller. */
  private end(run: ScriptRun, outcome: ScriptOutcome): ScriptOutcome {
    if (run.isDone) return outcome
    run.isDone = true
    if (run.asyncTimer !== null) clearTimeout(run.asyncTimer)
    if (run.sleepTimer !== null) clearTimeout(run.sleepTimer)
    if (run.turnImmediate !== null) clearImmediate(run.turnImmediate)
    this.suspendedRuns.delete(run)
    this.releaseThread(run.thread, run.isThreadDirty)
    if (run.resolve !== null) run.resolve(outcome)
    return outcome
  }

  private acquireThread(): PooledThread {
    const pooled = this.threadPool.pop()
    if (pooled !== undefined) return pooled
    const L = this.lua.newThread()
    return { L, ref: this.lua.ref(this.L) }
  }

  private releaseThread(thread: PooledThread, isDirty: boolean): void {
    if (isDirty) {
      // Closing runs the script's pending <close> handlers: give them a budget too, outside any request.
      this.deadlineMs = performance.now() + this.options.timeoutMs
      const rc = this.lua.resetThread(thread.L)
      this.deadlineMs = Infinity
      this.isOverBudget = false
      if (rc !== LUA_OK) {
        this.lua.unref(thread.ref)
        return
      }
    }
    this.lua.settop(thread.L, 0)
    if (this.threadPool.length < THREAD_POOL_SIZE && !this.isClosed) this.threadPool.push(thread)
    else this.lua.unref(thread.ref)
  }

  private errorOutcome(run: ScriptRun, message: string, stack: string | null): ScriptOutcome {
    const chunk = run.state.chunk
    return { kind: 'error', code: SCRIPT_ERROR.code, xErrorCode: SCRIPT_ERROR.xErrorCode, script: chunk.name,
      version: chunk.version, message, stack }
  }

  private timeoutOutcome(run: ScriptRun, what: string): ScriptOutcome {
    const chunk = run.state.chunk
    return { kind: 'error', code: SCRIPT_TIMEOUT.code, xErrorCode: SCRIPT_TIMEOUT.xErrorCode, script: chunk.name,
      version: chunk.version, message: `${SCRIPT_TIMEOUT.msg}: ${chunk.name} ${what}`, stack: null }
  }

  // ---- modules ----

  /** Installs the full set of lua/ modules (name -> source). Loaded modules that changed, were removed, or depend
   *  on one that did (directly or transitively) are re-run at once, dependencies first (scripts.md §3, fix:
   *  Slardar kept dependents bound to the old module). A failed reload keeps the previous instance. Modules not
   *  loaded yet load on their first require. */
  installModules(sources: ReadonlyMap<string, string>): ModuleInstallReport {
    this.assertOpen()
    const next = new Map<string, ModuleSource>()
    for (const [name, source] of sources) next.set(name, { source, version: md5(source) })
    const changed = new Set<string>()
    for (const name of new Set([...this.modules.keys(), ...next.keys()])) {
      if (this.modules.get(name)?.version !== next.get(name)?.version) changed.add(name)
    }
    this.modules = next
    const affected = this.dependentsOf(changed)
    const reloaded: string[] = []
    const errors: ModuleLoadError[] = []
    for (const name of this.dependencyOrder(affected)) {
      const module = next.get(name)
      if (module === undefined) {
        this.callModuleEntry(this.unloadModuleRef, [name])
        this.loadedModules.delete(name)
        this.dependencies.delete(name)
        continue
      }
      const previousDeps = this.dependencies.get(name)
      this.dependencies.delete(name)
      const error = this.callModuleEntry(this.reloadModuleRef, [name, module.source])
      if (error === null) {
        this.loadedModules.set(name, module.version)
        reloaded.push(name)
      } else {
        if (previousDeps !== undefined) this.dependencies.set(name, previousDeps)
        errors.push({ name, version: module.version, message: error })
      }
    }
    return { reloaded, errors }
  }

  /** Loaded modules among `changed` plus every loaded module that required one of them, transitively. */
  private dependentsOf(changed: ReadonlySet<string>): Set<string> {
    const affected = new Set<string>()
    const seen = new Set(changed)
    const pending = [...changed]
    while (pending.length > 0) {
      const name = pending.pop() as string
      if (this.loadedModules.has(name)) affected.add(name)
      for (const [module, deps] of this.dependencies) {
        if (deps.has(name) && !seen.has(module)) {
          seen.add(module)
          pending.push(module)
        }
      }
    }
    return affected
  }

  /** `names` ordered so that a module comes after the modules it requires. */
  private dependencyOrder(names: ReadonlySet<string>): string[] {
    const order: string[] = []
    const visited = new Set<string>()
    const visit = (name: string): void => {
      if (visited.has(name)) return
      visited.add(name)
      for (const dep of this.dependencies.get(name) ?? []) if (names.has(dep)) visit(dep)
      order.push(name)
    }
    for (const name of names) visit(name)
    return order
  }

  /** Calls a prelude entry point on the main state outside any request; returns the error text or null. */
  private callModuleEntry(ref: bigint, args: readonly string[]): string | null {
    const lua = this.lua
    const L = this.L
    lua.pushRef(L, ref)
    for (const arg of args) lua.pushText(L, arg)
    this.isOverBudget = false
    this.deadlineMs = performance.now() + this.options.timeoutMs
    const rc = lua.pcall(L, args.length, 0)
    this.deadlineMs = Infinity
    const wasOverBudget = this.isOverBudget
    this.isOverBudget = false
    if (rc === LUA_OK) return null
    const message = lua.describe(L, -1)
    lua.settop(L, -2)
    return wasOverBudget ? `module top-level code ran for more than ${this.options.timeoutMs} ms` : message
  }

  // ---- host functions (called from the prelude; L is the calling thread) ----

  private run(what: string): ScriptRun {
    const run = this.current
    if (run === null) throw new Error(`${what} is only available while a request runs`)
    return run
  }

  private dict(name: string): SharedDict {
    const dict = this.dicts.get(name)
    if (dict === undefined) throw new Error(`no shared dict "${name}"`)
    return dict
  }

  /** Arguments from..top as header values (strings, or numbers converted as Lua does); none means "remove". */
  private headerValues(L: number, from: number, fname: string): string[] | null {
    const lua = this.lua
    const top = lua.top(L)
    if (top < from) return null
    const values: string[] = []
    for (let i = from; i <= top; i++) {
      const t = lua.type(L, i)
      if (t !== LUA_TSTRING && t !== LUA_TNUMBER) throw new Error(`bad argument #2 to '${fname}' (string, number or table of strings expected)`)
      values.push(lua.binary(L, i) as string)
    }
    return values
  }

  private pushDictValue(L: number, value: DictValue | undefined): void {
    const lua = this.lua
    if (value === undefined) lua.pushNil(L)
    else if (typeof value === 'string') lua.pushBinary(L, value)
    else if (typeof value === 'number') lua.pushNumber(L, value)
    else lua.pushBoolean(L, value)
  }

  private pushConfig(L: number, key: string): void {
    const lua = this.lua
    const value = this.options.readConfig(key)
    if (value === undefined || !isJsonLike(value)) { lua.pushNil(L); return }
    if (value === null || typeof value !== 'object') { lua.pushJson(L, value, JSON_NULL); return }
    // The snapshot is immutable: the same object means the same Lua table, converted once per value.
    const cached = this.configCache.get(key)
    if (cached !== undefined && cached.value === value) { lua.pushRef(L, BigInt(cached.ref)); return }
    lua.pushJson(L, value, JSON_NULL)
    lua.pushCopy(L, -1)
    if (cached !== undefined) lua.unref(cached.ref)
    this.configCache.set(key, { value, ref: lua.ref(L) })
  }

  /** re_exec and re_sub take (subject, regex, options, ...): the pattern is argument 2, the options argument 3. */
  private compiledRegex(L: number): CompiledRegex | string {
    return this.regex.compile(this.lua.binary(L, 2) ?? '', this.lua.binary(L, 3) ?? '')
  }

  private logLine(level: number, message: string): void {
    const run = this.current
    const fields: Record<string, unknown> = run === null
      ? { script: PRELUDE_NAME }
      : { script: run.state.chunk.name, request_id: run.state.view.requestId }
    const log = this.options.log
    if (level <= LogLevel.Err) log.error(fields, message)
    else if (level === LogLevel.Warn) log.warn(fields, message)
    else if (level <= LogLevel.Info) log.info(fields, message)
    else log.debug(fields, message)
  }

  private hostFunctions(): Record<string, HostFunction> {
    const lua = this.lua
    const str = (L: number, idx: number): string => lua.binary(L, idx) ?? ''
    return {
      var_get: (L) => {
        const value = this.run('ngx.var').state.variable(str(L, 1))
        if (value === null) lua.pushNil(L)
        else lua.pushBinary(L, value)
        return 1
      },
      var_set: (L) => {
        const t = lua.type(L, 2)
        if (t !== LUA_TNIL && t !== LUA_TSTRING && t !== LUA_TNUMBER) throw new Error('ngx.var values must be strings, numbers or nil')
        this.run('ngx.var').state.setVariable(str(L, 1), t === LUA_TNIL ? null : str(L, 2))
        return 0
      },
      req_method: (L) => { lua.pushBinary(L, this.run('ngx.req.get_method').state.view.method); return 1 },
      req_http_version: (L) => { lua.pushNumber(L, Number(this.run('ngx.req.http_version').state.view.httpVersion)); return 1 },
      req_start_time: (L) => { lua.pushNumber(L, this.run('ngx.req.start_time').state.view.startTimeMs / 1000); return 1 },
      req_headers: (L) => {
        const pairs = this.run('ngx.req.get_headers').state.headerPairs(lua.boolean(L, 1))
        lua.ensureStack(L, pairs.length)
        for (const item of pairs) lua.pushBinary(L, item)
        return pairs.length
      },
      req_set_header: (L) => {
        this.run('ngx.req.set_header').state.setRequestHeader(str(L, 1), this.headerValues(L, 2, 'set_header'))
        return 0
      },
      req_set_uri: (L) => { this.run('ngx.req.set_uri').state.setUri(str(L, 1)); return 0 },
      req_body_read: (L) => { lua.pushBoolean(L, this.run('ngx.req.read_body').state.body !== undefined); return 1 },
      req_body: (L) => {
        const body = this.run('ngx.req.get_body_data').state.body
        if (body === undefined || body === null) lua.pushNil(L)
        else lua.pushBytes(L, body)
        return 1
      },
      status_get: (L) => { lua.pushNumber(L, this.run('ngx.status').state.status); return 1 },
      status_set: (L) => {
        const status = lua.type(L, 1) === LUA_TNUMBER ? lua.number(L, 1) : NaN
        if (!Number.isInteger(status) || status < 100 || status > 999) throw new Error('ngx.status must be an integer from 100 to 999')
        this.run('ngx.status').state.status = status
        return 0
      },
      resp_header_get: (L) => {
        const values = this.run('ngx.header').state.responseHeader(str(L, 1))
        lua.ensureStack(L, values.length)
        for (const value of values) lua.pushBinary(L, value)
        return values.length
      },
      resp_header_set: (L) => {
        this.run('ngx.header').state.setResponseHeader(str(L, 1), this.headerValues(L, 2, 'ngx.header'))
        return 0
      },
      say: (L) => { this.run('ngx.say').state.say(str(L, 1)); return 0 },
      log: (L) => { this.logLine(lua.number(L, 1), lua.text(L, 2) ?? ''); return 0 },
      now_ms: (L) => { lua.pushNumber(L, Math.floor(this.nowMs())); return 1 },
      md5: (L) => { lua.pushBinary(L, codecs.md5Hex(str(L, 1))); return 1 },
      md5_bin: (L) => { lua.pushBinary(L, codecs.md5Bin(str(L, 1))); return 1 },
      sha1_bin: (L) => { lua.pushBinary(L, codecs.sha1Bin(str(L, 1))); return 1 },
      hmac_sha1: (L) => { lua.pushBinary(L, codecs.hmacSha1(str(L, 1), str(L, 2))); return 1 },
      crc32: (L) => { lua.pushNumber(L, codecs.crc32(str(L, 1))); return 1 },
      b64_encode: (L) => { lua.pushBinary(L, codecs.encodeBase64(str(L, 1), lua.boolean(L, 2))); return 1 },
      b64_decode: (L) => {
        const decoded = codecs.decodeBase64(str(L, 1))
        if (decoded === null) lua.pushNil(L)
        else lua.pushBinary(L, decoded)
        return 1
      },
      re_exec: (L) => {
        const rx = this.compiledRegex(L)
        if (typeof rx === 'string') { lua.pushNil(L); lua.pushText(L, rx); return 2 }
        let offsets: number[] | null
        try {
          offsets = this.regex.exec(rx, str(L, 1), lua.number(L, 4))
        } catch (err) {
          if (!(err instanceof RegexFailure)) throw err
          lua.pushNil(L); lua.pushText(L, err.message); return 2
        }
        if (offsets === null) { lua.pushBoolean(L, false); return 1 }
        lua.ensureStack(L, offsets.length + 2)
        lua.pushNumber(L, rx.groupCount)
        lua.pushBoolean(L, rx.groupNames.length > 0)
        for (const offset of offsets) lua.pushNumber(L, offset)
        return offsets.length + 2
      },
      re_names: (L) => {
        const rx = this.regex.compile(str(L, 1), str(L, 2))
        if (typeof rx === 'string') return 0
        lua.ensureStack(L, 2 * rx.groupNames.length)
        for (const [name, index] of rx.groupNames) { lua.pushBinary(L, name); lua.pushNumber(L, index) }
        return 2 * rx.groupNames.length
      },
      re_sub: (L) => {
        const rx = this.compiledRegex(L)
        if (typeof rx === 'string') { lua.pushNil(L); lua.pushNil(L); lua.pushText(L, rx); return 3 }
        try {
          const { text, count } = this.regex.substitute(rx, str(L, 1), str(L, 4), lua.boolean(L, 5))
          lua.pushBinary(L, text)
          lua.pushNumber(L, count)
          return 2
        } catch (err) {
          if (!(err instanceof RegexFailure)) throw err
          lua.pushNil(L); lua.pushNil(L); lua.pushText(L, err.message); return 3
        }
      },
      shd_get: (L) => { this.pushDictValue(L, this.dict(str(L, 1)).get(str(L, 2))); return 1 },
      shd_set: (L) => {
        const t = lua.type(L, 4)
        const value: DictValue | null = t === LUA_TNIL ? null : t === LUA_TBOOLEAN ? lua.boolean(L, 4)
          : t === LUA_TNUMBER ? lua.number(L, 4) : str(L, 4)
        const mode = SET_MODES[lua.number(L, 2)] ?? 'set'
        const result = this.dict(str(L, 1)).set(mode, str(L, 3), value, lua.number(L, 5))
        lua.pushBoolean(L, result.ok)
        if (result.err === null) lua.pushNil(L)
        else lua.pushText(L, result.err)
        lua.pushBoolean(L, result.forcible)
        return 3
      },
      shd_incr: (L) => {
        const init = lua.type(L, 4) === LUA_TNUMBER ? lua.number(L, 4) : null
        const result = this.dict(str(L, 1)).incr(str(L, 2), lua.number(L, 3), init, lua.number(L, 5))
        if ('err' in result) { lua.pushNil(L); lua.pushText(L, result.err); return 2 }
        lua.pushNumber(L, result.value)
        lua.pushNil(L)
        lua.pushBoolean(L, result.forcible)
        return 3
      },
      shd_keys: (L) => {
        const keys = this.dict(str(L, 1)).keys(lua.number(L, 2))
        lua.ensureStack(L, keys.length)
        for (const key of keys) lua.pushBinary(L, key)
        return keys.length
      },
      shd_flush: (L) => { this.dict(str(L, 1)).flushAll(); return 0 },
      config_get: (L) => { this.pushConfig(L, lua.text(L, 1) ?? ''); return 1 },
      module_source: (L) => {
        const name = lua.text(L, 1) ?? ''
        const module = this.modules.get(name)
        if (module === undefined) {
          lua.pushNil(L)
          lua.pushText(L, `module '${name}' not found: there is no lua/${name} module`)
          return 2
        }
        if (lua.type(L, 2) === LUA_TSTRING) this.recordDependency(lua.text(L, 2) ?? '', name)
        this.loadingVersions.set(name, module.version)
        lua.pushText(L, module.source)
        return 1
      },
      module_dep: (L) => { this.recordDependency(lua.text(L, 1) ?? '', lua.text(L, 2) ?? ''); return 0 },
      module_loaded: (L) => {
        const name = lua.text(L, 1) ?? ''
        const version = this.loadingVersions.get(name) ?? ''
        this.loadingVersions.delete(name)
        if (lua.boolean(L, 2)) {
          this.loadedModules.set(name, version)
        } else {
          this.dependencies.delete(name)   // a module that failed to load has no instance to reload later
          this.reportLoadError(name, version, lua.text(L, 3) ?? 'unknown error')
        }
        return 0
      },
      call_noyield: (L) => {
        lua.callNoYield(L, lua.top(L) - 1)
        return lua.top(L)
      },
    }
  }

  private recordDependency(parent: string, name: string): void {
    let deps = this.dependencies.get(parent)
    if (deps === undefined) {
      deps = new Set()
      this.dependencies.set(parent, deps)
    }
    deps.add(name)
  }

  private reportLoadError(name: string, version: string, message: string): void {
    const key = `${name}@${version}`
    if (this.reportedLoadErrors.has(key)) return
    this.reportedLoadErrors.add(key)
    this.options.onModuleLoadError?.({ name, version, message })
  }

  private assertOpen(): void {
    if (this.isClosed) throw new LuaRuntimeError('runtime is closed')
  }

  /** Frees the Lua state. Suspended requests end at once with a script error. */
  close(): void {
    if (this.isClosed) return
    for (const run of [...this.suspendedRuns]) {
      this.end(run, this.errorOutcome(run, 'the Lua runtime was closed while the script was suspended', null))
    }
    this.isClosed = true
    this.lua.close()
  }
}

function checkLiteralPatterns(name: string, source: string): string | null {
  for (const call of findLiteralRegexCalls(source)) {
    const error = checkPattern(call.pattern, call.options ?? '')
    if (error !== null) return `${name}:${call.line}: ${error}`
  }
  return null
}

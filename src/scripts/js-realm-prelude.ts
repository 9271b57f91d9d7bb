/** The code that runs inside the JS plugins' `node:vm` realm (scripts.md §5, §9): the budget check and
 *  `ScriptTimeout`, the `ctx` classes, `errno`, `config`, `util`, `log`, `console`, CommonJS `require`, and the
 *  lock-down that freezes the realm. js-realm.ts evaluates `realmPrelude`'s source text *inside* the realm
 *  (Function.prototype.toString), so everything it creates belongs to the realm: a script that walks
 *  `.constructor` or a prototype chain from anything it is given only reaches the realm's frozen built-ins, never
 *  the host's `Function` (which could compile code with the proxy's privileges) or its mutable prototypes.
 *
 *  Rules for this file, because the function is evaluated out of its module:
 *  - `realmPrelude` may use only its parameter and ECMAScript globals: no imports, no module-level names
 *    (types are fine, they are erased), and nothing tsc would downlevel into a module-level helper (the build
 *    targets ES2022, so private fields, `??=` and async functions stay native);
 *  - host objects reached through `host` and `CtxHost` stay in closures and private fields, never in a property a
 *    script can read; host functions get only primitives and realm values, and are never handed to a script;
 *  - script-caused errors are thrown here, as realm errors, after validating the arguments.
 *  Owns: the shape and checks of the JS API. Leaves request state and decisions to host-run.ts, module bookkeeping
 *  to js-modules.ts, and the host side of logging, crypto and config to js-realm.ts. */

import type { RequestView } from '../../lua-compat/index.js'

/** Budget state shared with the host: the runtime sets the deadline when it calls a hook (scripts.md §9). */
export interface BudgetState {
  deadlineMs: number
  /** Set by the check when it throws, so a run whose script caught the ScriptTimeout still counts as over budget. */
  isTripped: boolean
}

export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'

/** Opaque to the realm: a logger the host passes back to `RealmHost.log` / `RealmHost.console`. */
export type LoggerHandle = object

export const PHASE = Object.freeze({ none: 0, request: 1, response: 2, log: 3 })

export interface RealmHost {
  /** Monotonic milliseconds (performance.now). */
  readonly now: () => number
  readonly budget: BudgetState
  readonly timeoutMs: number
  readonly phases: typeof PHASE
  /** Name of the global accessor through which module top-level code is entered (js-realm.ts). */
  readonly entryName: string
  /** [name, code, msg, httpcode] of Slardar's 14 errno entries, UNKNOWN_ERR included. */
  readonly errno: ReadonlyArray<readonly [string, number, string, number]>
  readonly crypto: {
    md5(text: string): string
    sha256(text: string): string
    hmacSha256(key: string, text: string): string
    base64Encode(text: string): string
    base64Decode(text: string): string
    uuid(): string
  }
  /** Dynamic config (scripts.md §8): the host's parsed JSON value, the same object while unchanged. */
  readonly readConfig: (key: string) => unknown
  readonly log: (logger: LoggerHandle, level: LogLevelName, first: unknown, second: unknown) => void
  readonly console: (logger: LoggerHandle, level: LogLevelName, args: readonly unknown[]) => void
  /** Logger of `globalThis.console`, which no module shadows with its own. */
  readonly globalLogger: LoggerHandle
}

/** What a `ctx` asks of its request (host-run.ts implements it). Values passed in are already validated. */
export interface CtxHost {
  readonly phase: number
  readonly view: RequestView
  /** Bumped whenever the effective headers or target change, so cached views are rebuilt. */
  readonly headerGeneration: number
  readonly targetGeneration: number
  readonly responseGeneration: number
  readonly isAnswered: boolean
  currentTarget(): string
  /** Effective request headers, changes applied: [lowerName, value, lowerName, value, ...]. */
  headerPairs(): readonly string[]
  setRequestHeader(name: string, value: string | readonly string[] | null): void
  setTarget(target: string): void
  upstreamName(): string
  setUpstream(name: string): void
  respond(status: number, body: string | ArrayBufferView, contentType: string, headers: readonly string[]): void
  exit(code: number, msg: string, httpcode: number): void
  responseStatus(): number
  responseHeaders(): Readonly<Record<string, string | readonly string[]>>
  setResponseHeader(lowerName: string, value: string | readonly string[] | null): void
  accessLogFields(): Readonly<Record<string, string | number>>
  requestLogger(): LoggerHandle
}

export interface RealmModule {
  exports: unknown
}

/** A require lookup as the host answers it. */
export type RequireAnswer = { readonly ok: true; readonly exports: unknown } | { readonly ok: false; readonly error: string }

/** The outer wrapper of a compiled module (js-compile.ts): binds console, global view and budget check. */
export type ModuleOuter = (console: object, globalView: object, budget: () => void) => ModuleInner
export type ModuleInner = (exports: unknown, require: unknown, module: RealmModule) => unknown

export interface RealmApi {
  readonly budgetCheck: () => void
  /** The frozen object scripts see as `globalThis`. */
  readonly globalView: object
  readonly promisePrototype: object
  isTimeout(value: unknown): boolean
  newModule(): RealmModule
  makeRequire(resolve: (name: string) => RequireAnswer): unknown
  makeConsole(logger: LoggerHandle): object
  /** Arms the global entry accessor with one module's top-level call; the next read consumes it. */
  prepareEntry(inner: ModuleInner, module: RealmModule, require: unknown): void
  newCtx(run: CtxHost): object
  /** Adopts a hook's result with the realm's Promise and reports how it settled; script code never receives a host
   *  function (a custom thenable gets the realm's resolve functions). */
  observe(result: unknown, onSettled: (isFulfilled: boolean, reason: unknown) => void): void
}

export function realmPrelude(host: RealmHost): RealmApi {
  'use strict'
  const realmGlobal = globalThis
  const { now, budget, crypto } = host
  const PHASE_REQUEST = host.phases.request
  const PHASE_RESPONSE = host.phases.response
  const PHASE_LOG = host.phases.log
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
  /** Characters Node refuses in a header value; escaped as lua-compat (and OpenResty for CR/LF) does. */
  const INVALID_VALUE_CHARS = /[^\t\x20-\x7e\x80-\xff]/g
  const HAS_INVALID_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/
  /** Characters that cannot appear in a request target: controls, space, '#', non-ASCII. */
  const TARGET_UNSAFE = /[^\x21-\x22\x24-\x7e]/g

  // ---- budget (scripts.md §9) ----

  class ScriptTimeout extends Error {
    constructor() {
      super(`script timeout: ran for more than ${host.timeoutMs} ms without finishing (scripts.timeout_ms)`)
    }
  }
  Object.defineProperty(ScriptTimeout.prototype, 'name', { value: 'ScriptTimeout' })

  let timeoutError: ScriptTimeout | null = null

  /** Inserted at every function entry and loop iteration. Past the deadline it throws on every call, so a script
   *  that catches the error cannot keep looping; the next hook call sets a new deadline and clears isTripped. One
   *  error object per overrun: unwinding deep recursion rethrows it instead of capturing a stack at every level. */
  const budgetCheck = function (): void {
    if (now() > budget.deadlineMs) {
      if (!budget.isTripped || timeoutError === null) {
        timeoutError = new ScriptTimeout()
        budget.isTripped = true
      }
      throw timeoutError
    }
  }

  // ---- argument checks shared by the ctx members ----

  function describe(value: unknown): string {
    if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)
    if (value === null) return 'null'
    if (Array.isArray(value)) return 'an array'
    if (typeof value === 'object') return 'an object'
    return typeof value === 'function' ? 'a function' : String(value)
  }

  function headerName(name: unknown, what: string): string {
    if (typeof name !== 'string' || !TOKEN.test(name)) {
      throw new TypeError(`${what}: invalid header name ${describe(name)} (letters, digits and !#$%&'*+-.^_\`|~ only)`)
    }
    return name
  }

  function escapeValue(value: string): string {
    if (!HAS_INVALID_VALUE_CHAR.test(value)) return value
    return value.replace(INVALID_VALUE_CHARS, (c) => {
      try {
        return encodeURIComponent(c)
      } catch {
        return '%EF%BF%BD'   // a lone surrogate: U+FFFD
      }
    })
  }

  /** A header value as given: a string (or number), or an array of them; an empty array removes the header. */
  function headerValue(value: unknown, what: string): string | readonly string[] | null {
    if (typeof value === 'string') return escapeValue(value)
    if (typeof value === 'number') return String(value)
    if (Array.isArray(value)) {
      if (value.length === 0) return null
      const values: string[] = []
      for (const item of value) {
        if (typeof item !== 'string' && typeof item !== 'number') {
          throw new TypeError(`${what}: header values must be strings, got ${describe(item)} in the array`)
        }
        values.push(escapeValue(String(item)))
      }
      return values.length === 1 ? values[0] as string : values
    }
    throw new TypeError(`${what}: the value must be a string or an array of strings, got ${describe(value)}`)
  }

  function requirePhase(run: CtxHost, phase: number, what: string): void {
    if (run.phase !== phase) {
      const hook = phase === PHASE_REQUEST ? 'onRequest' : 'onResponse'
      throw new Error(`${what} can only be called while ${hook} runs`)
    }
  }

  function requireText(value: unknown, what: string): string {
    if (typeof value !== 'string') throw new TypeError(`${what}: expected a string, got ${describe(value)}`)
    return value
  }

  // ---- values handed to scripts: realm copies, frozen ----

  /** A frozen dictionary without a prototype, so header or query names such as __proto__ are plain keys. */
  function dictionaryOf(pairs: readonly string[], join: (name: string) => string | null): Record<string, string | readonly string[]> {
    const out: Record<string, string | string[]> = Object.create(null)
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const name = pairs[i] as string
      const value = pairs[i + 1] as string
      const previous = out[name]
      if (previous === undefined) out[name] = value
      else {
        const separator = join(name)
        if (separator !== null) out[name] = (previous as string) + separator + value
        else if (Array.isArray(previous)) previous.push(value)
        else out[name] = [previous, value]
      }
    }
    for (const name of Object.keys(out)) {
      const value = out[name]
      if (Array.isArray(value)) Object.freeze(value)
    }
    return Object.freeze(out)
  }

  const joinHeader = (name: string): string => (name === 'cookie' ? '; ' : ', ')
  const keepRepeated = (): null => null

  function decodeQueryPart(text: string): string {
    const spaced = text.includes('+') ? text.replace(/\+/g, ' ') : text
    if (!spaced.includes('%')) return spaced
    try {
      return decodeURIComponent(spaced)
    } catch {
      return spaced   // malformed escapes stay as received
    }
  }

  function parseQuery(target: string): Record<string, string | readonly string[]> {
    const q = target.indexOf('?')
    const pairs: string[] = []
    if (q !== -1) {
      for (const part of target.slice(q + 1).split('&')) {
        if (part === '') continue
        const eq = part.indexOf('=')
        if (eq === -1) pairs.push(decodeQueryPart(part), '')
        else pairs.push(decodeQueryPart(part.slice(0, eq)), decodeQueryPart(part.slice(eq + 1)))
      }
    }
    return dictionaryOf(pairs, keepRepeated)
  }

  const configCopies = new WeakMap<object, unknown>()

  /** A deep, frozen realm copy of a JSON value from the host; cached per host object, so a value unchanged in the
   *  snapshot is copied once (scripts.md §10). */
  function copyIn(value: unknown): unknown {
    if (value === null || typeof value !== 'object') return value
    const cached = configCopies.get(value)
    if (cached !== undefined) return cached
    let copy: unknown
    if (Array.isArray(value)) {
      copy = Object.freeze(Array.prototype.map.call(value, copyIn))
    } else {
      const out: Record<string, unknown> = {}
      for (const key of Object.keys(value)) {
        Object.defineProperty(out, key, { value: copyIn((value as Record<string, unknown>)[key]), enumerable: true })
      }
      copy = Object.freeze(out)
    }
    configCopies.set(value, copy)
    return copy
  }

  function flatCopy(fields: Readonly<Record<string, string | number>>): object {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(fields)) {
      Object.defineProperty(out, key, { value: fields[key], enumerable: true })
    }
    return Object.freeze(out)
  }

  // ---- errno (scripts.md §7) ----

  const errno: Record<string, object> = {}
  const errnoByCode = new Map<number, readonly [number, string, number]>()
  let unknownErr: readonly [number, string, number] = [50300000, 'unknown error', 503]
  for (const [name, code, msg, httpcode] of host.errno) {
    errno[name] = Object.freeze({ code, msg, httpcode })
    errnoByCode.set(code, [code, msg, httpcode])
    if (name === 'UNKNOWN_ERR') unknownErr = [code, msg, httpcode]
  }
  Object.freeze(errno)

  function httpcodeOf(code: number): number {
    return code < 1000 ? code : Number(String(code).slice(0, 3))
  }

  // ---- shared ctx members ----

  const config = Object.freeze({
    get(key: unknown): unknown {
      return copyIn(host.readConfig(requireText(key, 'ctx.config.get(key)')))
    },
  })

  const util = Object.freeze({
    md5: (text: unknown): string => crypto.md5(requireText(text, 'ctx.util.md5')),
    sha256: (text: unknown): string => crypto.sha256(requireText(text, 'ctx.util.sha256')),
    hmacSha256: (key: unknown, text: unknown): string =>
      crypto.hmacSha256(requireText(key, 'ctx.util.hmacSha256 key'), requireText(text, 'ctx.util.hmacSha256')),
    base64Encode: (text: unknown): string => crypto.base64Encode(requireText(text, 'ctx.util.base64Encode')),
    base64Decode: (text: unknown): string => crypto.base64Decode(requireText(text, 'ctx.util.base64Decode')),
    uuid: (): string => crypto.uuid(),
  })

  class ScriptLog {
    readonly #logger: LoggerHandle
    constructor(logger: LoggerHandle) {
      this.#logger = logger
    }
    trace(first: unknown, second?: unknown): void { host.log(this.#logger, 'trace', first, second) }
    debug(first: unknown, second?: unknown): void { host.log(this.#logger, 'debug', first, second) }
    info(first: unknown, second?: unknown): void { host.log(this.#logger, 'info', first, second) }
    warn(first: unknown, second?: unknown): void { host.log(this.#logger, 'warn', first, second) }
    error(first: unknown, second?: unknown): void { host.log(this.#logger, 'error', first, second) }
    fatal(first: unknown, second?: unknown): void { host.log(this.#logger, 'fatal', first, second) }
  }

  /** console methods are closures (not prototype methods), so `arr.forEach(console.log)` works as in Node. */
  function makeConsole(logger: LoggerHandle): object {
    const at = (level: LogLevelName) => (...args: unknown[]): void => { host.console(logger, level, args) }
    return Object.freeze({
      log: at('info'), info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), trace: at('debug'),
    })
  }

  // ---- ctx (scripts.md §5) ----

  class Req {
    readonly #run: CtxHost
    #headers: object | null = null
    #headersGeneration = -1
    #query: object | null = null
    #queryGeneration = -1
    constructor(run: CtxHost) {
      this.#run = run
    }
    get method(): string { return this.#run.view.method }
    get host(): string { return this.#run.view.host }
    get clientIp(): string {
      const addr = this.#run.view.remoteAddr
      return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr
    }
    get path(): string {
      const target = this.#run.currentTarget()
      const q = target.indexOf('?')
      return q === -1 ? target : target.slice(0, q)
    }
    get query(): object {
      const run = this.#run
      if (this.#query === null || this.#queryGeneration !== run.targetGeneration) {
        this.#query = parseQuery(run.currentTarget())
        this.#queryGeneration = run.targetGeneration
      }
      return this.#query
    }
    get headers(): object {
      const run = this.#run
      if (this.#headers === null || this.#headersGeneration !== run.headerGeneration) {
        this.#headers = dictionaryOf(run.headerPairs(), joinHeader)
        this.#headersGeneration = run.headerGeneration
      }
      return this.#headers
    }
    setHeader(name: unknown, value: unknown): void {
      requirePhase(this.#run, PHASE_REQUEST, 'ctx.req.setHeader')
      this.#run.setRequestHeader(headerName(name, 'ctx.req.setHeader'), headerValue(value, 'ctx.req.setHeader'))
    }
    removeHeader(name: unknown): void {
      requirePhase(this.#run, PHASE_REQUEST, 'ctx.req.removeHeader')
      this.#run.setRequestHeader(headerName(name, 'ctx.req.removeHeader'), null)
    }
    setPath(target: unknown): void {
      const run = this.#run
      requirePhase(run, PHASE_REQUEST, 'ctx.req.setPath')
      if (typeof target !== 'string' || !target.startsWith('/')) {
        throw new TypeError(`ctx.req.setPath: the path must be a string starting with "/", got ${describe(target)}`)
      }
      let escaped: string
      try {
        escaped = target.replace(TARGET_UNSAFE, encodeURIComponent)
      } catch {
        throw new TypeError('ctx.req.setPath: the path contains an unpaired surrogate character')
      }
      if (escaped.includes('?')) {
        run.setTarget(escaped)
      } else {
        const current = run.currentTarget()
        const q = current.indexOf('?')
        run.setTarget(q === -1 ? escaped : escaped + current.slice(q))
      }
    }
  }

  class Upstream {
    readonly #run: CtxHost
    constructor(run: CtxHost) {
      this.#run = run
    }
    get name(): string { return this.#run.upstreamName() }
    set(name: unknown): void {
      requirePhase(this.#run, PHASE_REQUEST, 'ctx.upstream.set')
      if (typeof name !== 'string' || name === '') {
        throw new TypeError(`ctx.upstream.set: the upstream name must be a non-empty string, got ${describe(name)}`)
      }
      this.#run.setUpstream(name)
    }
  }

  class Res {
    readonly #run: CtxHost
    #headers: object | null = null
    #headersGeneration = -1
    constructor(run: CtxHost) {
      this.#run = run
    }
    get status(): number { return this.#run.responseStatus() }
    get headers(): object {
      const run = this.#run
      if (this.#headers === null || this.#headersGeneration !== run.responseGeneration) {
        const pairs: string[] = []
        const headers = run.responseHeaders()
        for (const name of Object.keys(headers)) {
          const value = headers[name]
          if (typeof value === 'string') pairs.push(name, value)
          else if (value !== undefined) for (const item of value) pairs.push(name, item)
        }
        this.#headers = dictionaryOf(pairs, keepRepeated)
        this.#headersGeneration = run.responseGeneration
      }
      return this.#headers
    }
    setHeader(name: unknown, value: unknown): void {
      requirePhase(this.#run, PHASE_RESPONSE, 'ctx.res.setHeader')
      const checked = headerName(name, 'ctx.res.setHeader').toLowerCase()
      this.#run.setResponseHeader(checked, headerValue(value, 'ctx.res.setHeader'))
    }
    removeHeader(name: unknown): void {
      requirePhase(this.#run, PHASE_RESPONSE, 'ctx.res.removeHeader')
      this.#run.setResponseHeader(headerName(name, 'ctx.res.removeHeader').toLowerCase(), null)
    }
  }

  class Ctx {
    readonly #run: CtxHost
    #req: Req | null = null
    #upstream: Upstream | null = null
    #res: Res | null = null
    #vars: object | null = null
    #log: ScriptLog | null = null
    #accessLog: object | null = null
    constructor(run: CtxHost) {
      this.#run = run
    }
    get req(): Req { return this.#req ??= new Req(this.#run) }
    get upstream(): Upstream { return this.#upstream ??= new Upstream(this.#run) }
    get res(): Res | undefined {
      return this.#run.phase === PHASE_RESPONSE ? (this.#res ??= new Res(this.#run)) : undefined
    }
    get accessLog(): object | undefined {
      if (this.#run.phase !== PHASE_LOG) return undefined
      return this.#accessLog ??= flatCopy(this.#run.accessLogFields())
    }
    get vars(): object { return this.#vars ??= {} }
    get config(): typeof config { return config }
    get util(): typeof util { return util }
    get errno(): typeof errno { return errno }
    get log(): ScriptLog { return this.#log ??= new ScriptLog(this.#run.requestLogger()) }

    respond(status: unknown, body?: unknown, headers?: unknown): void {
      const run = this.#run
      requirePhase(run, PHASE_REQUEST, 'ctx.respond')
      if (run.isAnswered) throw new Error('ctx.respond: this request was already answered (respond and exit may be called once)')
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`ctx.respond: status must be an integer 200..599, got ${describe(status)}`)
      }
      let payload: string | ArrayBufferView
      let contentType = 'text/plain; charset=utf-8'
      if (body === undefined || body === null) payload = ''
      else if (typeof body === 'string') payload = body
      else if (ArrayBuffer.isView(body)) payload = body
      else {
        const json: string | undefined = JSON.stringify(body)
        if (json === undefined) throw new TypeError(`ctx.respond: the body must be a string, a Uint8Array or a JSON value, got ${describe(body)}`)
        payload = json
        contentType = 'application/json'
      }
      const flat: string[] = []
      if (headers !== undefined && headers !== null) {
        if (typeof headers !== 'object') throw new TypeError(`ctx.respond: headers must be an object, got ${describe(headers)}`)
        for (const name of Object.keys(headers)) {
          headerName(name, 'ctx.respond')
          const value = headerValue((headers as Record<string, unknown>)[name], 'ctx.respond')
          if (value === null) continue
          if (typeof value === 'string') flat.push(name, value)
          else for (const item of value) flat.push(name, item)
        }
      }
      run.respond(status, payload, contentType, flat)
    }

    exit(err?: unknown): void {
      const run = this.#run
      requirePhase(run, PHASE_REQUEST, 'ctx.exit')
      if (run.isAnswered) throw new Error('ctx.exit: this request was already answered (respond and exit may be called once)')
      let resolved = unknownErr
      if (typeof err === 'number') {
        resolved = errnoByCode.get(err) ?? unknownErr
      } else if (typeof err === 'object' && err !== null) {
        // An entry, or any object with an integer code (Slardar read err.code, err.msg, err.httpcode).
        const { code, msg, httpcode } = err as { code?: unknown; msg?: unknown; httpcode?: unknown }
        if (typeof code === 'number' && Number.isInteger(code)) {
          resolved = [code, msg === undefined || msg === null ? '' : String(msg),
            typeof httpcode === 'number' && Number.isInteger(httpcode) ? httpcode : httpcodeOf(code)]
        }
      }
      run.exit(resolved[0], resolved[1], resolved[2])
    }
  }

  // ---- CommonJS modules ----

  function makeRequire(resolve: (name: string) => RequireAnswer): unknown {
    return function require(name: unknown): unknown {
      if (typeof name !== 'string') throw new TypeError(`require: the module name must be a string, got ${describe(name)}`)
      const answer = resolve(name)
      if (!answer.ok) throw new Error(answer.error)
      return answer.exports
    }
  }

  // Module top-level code is entered through a global accessor, because vm's per-call timeout (the backstop for
  // top-level code) only applies to code run by Script.runInContext. Reading it consumes the armed call.
  let pendingEntry: (() => unknown) | null = null
  Object.defineProperty(realmGlobal, host.entryName, {
    get(): unknown {
      const entry = pendingEntry
      pendingEntry = null
      return entry
    },
    enumerable: false,
    configurable: false,
  })

  // ---- lock-down ----

  const globalConsole = makeConsole(host.globalLogger)
  // Not ECMAScript, or a way to run code outside a hook and its budget: WebAssembly (compilation is disabled anyway),
  // FinalizationRegistry (its callbacks are timers in disguise), Atomics.wait (blocks the whole worker).
  const droppedGlobals = ['WebAssembly', 'FinalizationRegistry']
  for (const name of droppedGlobals) delete (realmGlobal as Record<string, unknown>)[name]
  delete (Atomics as { wait?: unknown }).wait
  Object.defineProperty(realmGlobal, 'console', { value: globalConsole, writable: true, enumerable: false, configurable: true })

  /** Frozen prototypes make plain assignment of an inherited name fail (`err.name = 'X'`, `Foo.prototype.toString = f`:
   *  the "override mistake"). For the names ordinary code assigns, a getter/setter pair keeps the built-in value
   *  and lets the assignment define an own property on the object instead. */
  function tameOverrides(target: object, keys: readonly PropertyKey[]): void {
    for (const key of keys) {
      const descriptor = Reflect.getOwnPropertyDescriptor(target, key)
      if (descriptor === undefined || !('value' in descriptor) || descriptor.writable !== true) continue
      const value: unknown = descriptor.value
      Object.defineProperty(target, key, {
        get(): unknown { return value },
        set(this: object, next: unknown): void {
          if (this === target) throw new TypeError(`Cannot assign to read only property '${String(key)}' of a frozen built-in`)
          Object.defineProperty(this, key, { value: next, writable: true, enumerable: true, configurable: true })
        },
        enumerable: descriptor.enumerable === true,
        configurable: false,
      })
    }
  }
  const errorNames = ['name', 'message', 'constructor', 'toString']
  // Object.prototype.constructor stays a data property: util.inspect (console) reads it to name objects, and objects
  // that assign `constructor` normally have their own.
  tameOverrides(Object.prototype, Reflect.ownKeys(Object.prototype).filter((key) => key !== 'constructor'))
  tameOverrides(Function.prototype, ['constructor', 'toString'])
  tameOverrides(Promise.prototype, ['constructor'])
  for (const ErrorClass of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]) {
    tameOverrides(ErrorClass.prototype, errorNames)
  }

  // Every global binding becomes read-only (`Object = 1` throws). The global object itself cannot be frozen in a
  // vm context, so scripts get a frozen copy of it as their `globalThis` (js-compile.ts binds it in the wrapper).
  const globalView: Record<PropertyKey, unknown> = {}
  for (const key of Reflect.ownKeys(realmGlobal)) {
    const descriptor = Reflect.getOwnPropertyDescriptor(realmGlobal, key)
    if (descriptor === undefined) continue
    if ('value' in descriptor) {
      Object.defineProperty(realmGlobal, key, { value: descriptor.value, writable: false, enumerable: descriptor.enumerable === true, configurable: false })
      if (key !== 'globalThis') Object.defineProperty(globalView, key, { value: descriptor.value, enumerable: descriptor.enumerable === true })
    } else {
      Object.defineProperty(realmGlobal, key, { get: descriptor.get, set: descriptor.set, enumerable: descriptor.enumerable === true, configurable: false })
    }
  }
  Object.defineProperty(globalView, 'globalThis', { value: globalView })

  /** Freezes everything reachable from `roots` through properties, accessors and prototypes. */
  function harden(roots: readonly unknown[]): void {
    const seen = new Set<unknown>([realmGlobal])
    const pending = [...roots]
    while (pending.length > 0) {
      const value = pending.pop()
      if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) continue
      seen.add(value)
      Object.freeze(value)
      pending.push(Object.getPrototypeOf(value))
      for (const key of Reflect.ownKeys(value)) {
        const descriptor = Reflect.getOwnPropertyDescriptor(value, key)
        if (descriptor === undefined) continue
        if ('value' in descriptor) pending.push(descriptor.value)
        else pending.push(descriptor.get, descriptor.set)
      }
    }
  }

  // Intrinsics no global property leads to.
  const intrinsics: unknown[] = [
    Object.getPrototypeOf(function* () {}),
    Object.getPrototypeOf(async function () {}),
    Object.getPrototypeOf(async function* () {}),
    Object.getPrototypeOf([][Symbol.iterator]()),
    Object.getPrototypeOf(new Map()[Symbol.iterator]()),
    Object.getPrototypeOf(new Set()[Symbol.iterator]()),
    Object.getPrototypeOf(''[Symbol.iterator]()),
    Object.getPrototypeOf(/a/[Symbol.matchAll]('')),
    Object.getPrototypeOf(Uint8Array),
    Object.getPrototypeOf(new Intl.Segmenter().segment('')),
    Object.getPrototypeOf(new Intl.Segmenter().segment('')[Symbol.iterator]()),
  ]

  const api: RealmApi = {
    budgetCheck,
    globalView,
    promisePrototype: Promise.prototype,
    isTimeout: (value: unknown): boolean => value instanceof ScriptTimeout,
    newModule: (): RealmModule => ({ exports: {} }),
    makeRequire,
    makeConsole,
    prepareEntry(inner: ModuleInner, module: RealmModule, require: unknown): void {
      pendingEntry = () => inner.call(module.exports, module.exports, require, module)
    },
    newCtx: (run: CtxHost): object => new Ctx(run),
    observe(result: unknown, onSettled: (isFulfilled: boolean, reason: unknown) => void): void {
      Promise.resolve(result).then(() => { onSettled(true, undefined) }, (reason: unknown) => { onSettled(false, reason) })
    },
  }
  harden([...Reflect.ownKeys(realmGlobal).map((key) => Reflect.getOwnPropertyDescriptor(realmGlobal, key)),
    ...intrinsics, globalView, api, Ctx, Req, Upstream, Res, ScriptLog, ScriptTimeout, errno, config, util])
  return api
}

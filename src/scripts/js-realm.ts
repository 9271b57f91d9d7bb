/** The one `node:vm` realm of a process's JS plugins (scripts.md §5, §9): created once with string and WebAssembly
 *  code generation disabled, locked down by js-realm-prelude.ts, and shared by every module and script version.
 *  Owns: the context, the budget state, the host functions behind `ctx.util`, `ctx.log` and `console`, and running
 *  a module's top-level code (budget plus vm's per-call timeout, used nowhere else). Leaves which module to run and
 *  what it requires to js-modules.ts, and hook calls to host-run.ts. */

import { createHash, createHmac, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { formatWithOptions } from 'node:util'
import vm from 'node:vm'
import type { Logger } from '../log.js'
import { ERRNO } from './errno.js'
import type { CompiledJs } from './js-compile.js'
import {
  PHASE, realmPrelude, type BudgetState, type LoggerHandle, type LogLevelName, type ModuleInner, type ModuleOuter,
  type RealmApi, type RealmHost, type RealmModule,
} from './js-realm-prelude.js'

/** The global accessor that enters module top-level code (js-compile.ts reserves the `__slardar` prefix). */
const ENTRY_NAME = '__slardar_entry'
const INSPECT_OPTIONS = { customInspect: false, depth: 4, breakLength: Infinity }

export interface JsRealmOptions {
  /** scripts.timeout_ms */
  readonly timeoutMs: number
  readonly readConfig: (key: string) => unknown
  /** Parent of every script logger; console and ctx.log lines are children of it. */
  readonly log: Logger
}

/** What a thrown value says, read defensively: its getters are script code and may throw themselves. */
export interface ThrownDescription {
  readonly message: string
  readonly stack: string | null
}

export function describeThrown(value: unknown): ThrownDescription {
  try {
    if (typeof value === 'object' && value !== null) {
      const { message, stack, name } = value as { message?: unknown; stack?: unknown; name?: unknown }
      const text = typeof message === 'string' ? message : String(value)
      return {
        message: typeof name === 'string' && name !== '' && name !== 'Error' ? `${name}: ${text}` : text,
        stack: typeof stack === 'string' ? stack : null,
      }
    }
    return { message: `threw a non-error value: ${String(value)}`, stack: null }
  } catch {
    return { message: 'threw a value that cannot be described', stack: null }
  }
}

function writeLog(logger: LoggerHandle, level: LogLevelName, first: unknown, second: unknown): void {
  const log = logger as Logger
  if (!log.isLevelEnabled(level)) return
  try {
    if (typeof first === 'string') {
      log[level](second === undefined ? first : formatWithOptions(INSPECT_OPTIONS, first, second))
    } else if (typeof first === 'object' && first !== null && typeof (first as { stack?: unknown }).stack === 'string') {
      // A realm Error is not an instanceof the host's Error, so pino would log it as {}; describe it instead.
      const { message, stack } = describeThrown(first)
      log[level]({ err: { message, stack } }, typeof second === 'string' ? second : message)
    } else if (typeof first === 'object' && first !== null) {
      if (typeof second === 'string') log[level](first, second)
      else log[level](first)
    } else {
      log[level](String(first))
    }
  } catch {
    // A log line is never worth failing the request: a throwing toJSON or getter loses only this line.
  }
}

function writeConsole(logger: LoggerHandle, level: LogLevelName, args: readonly unknown[]): void {
  const log = logger as Logger
  if (!log.isLevelEnabled(level)) return
  try {
    log[level](formatWithOptions(INSPECT_OPTIONS, ...args))
  } catch {
    // as in writeLog
  }
}

export class JsRealm {
  readonly api: RealmApi
  readonly budget: BudgetState = { deadlineMs: Infinity, isTripped: false }
  private readonly context: vm.Context
  private readonly entryScript = new vm.Script(`${ENTRY_NAME}()`, { filename: 'slardar:module-entry' })

  constructor(private readonly options: JsRealmOptions) {
    this.context = vm.createContext({}, {
      name: 'slardar-js-plugins',
      codeGeneration: { strings: false, wasm: false },
    })
    const host: RealmHost = {
      now: performance.now.bind(performance),
      budget: this.budget,
      timeoutMs: options.timeoutMs,
      phases: PHASE,
      entryName: ENTRY_NAME,
      errno: Object.entries(ERRNO).map(([name, e]) => [name, e.code, e.msg, e.httpcode] as const),
      crypto: {
        md5: (text) => createHash('md5').update(text, 'utf8').digest('hex'),
        sha256: (text) => createHash('sha256').update(text, 'utf8').digest('hex'),
        hmacSha256: (key, text) => createHmac('sha256', key).update(text, 'utf8').digest('hex'),
        base64Encode: (text) => Buffer.from(text, 'utf8').toString('base64'),
        base64Decode: (text) => Buffer.from(text, 'base64').toString('utf8'),
        uuid: () => randomUUID(),
      },
      readConfig: (key) => {
        try {
          return options.readConfig(key)
        } catch {
          return undefined   // a failing lookup must not hand the script a host Error (and the host's Function)
        }
      },
      log: writeLog,
      console: writeConsole,
      globalLogger: options.log.child({ runtime: 'js' }),
    }
    const prelude = new vm.Script(`(${realmPrelude.toString()})`, { filename: 'slardar:js-realm-prelude' })
    const create = prelude.runInContext(this.context) as (host: RealmHost) => RealmApi
    this.api = create(host)
  }

  get budgetMs(): number {
    return this.options.timeoutMs
  }

  /** Starts a run: the budget of the code about to be called is scripts.timeout_ms from now. */
  startRun(): void {
    this.budget.deadlineMs = performance.now() + this.options.timeoutMs
    this.budget.isTripped = false
  }

  isTimeout(value: unknown): boolean {
    return this.api.isTimeout(value) || (value as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT'
  }

  /** True for promises created by script code: the integrator's unhandledRejection handler uses it. */
  ownsPromise(promise: unknown): boolean {
    return typeof promise === 'object' && promise !== null && Object.prototype.isPrototypeOf.call(this.api.promisePrototype, promise)
  }

  loggerFor(name: string, version: string): Logger {
    return this.options.log.child({ script: name, version })
  }

  /** Runs one module's top-level code. The outermost load is entered through vm's per-call timeout as a backstop
   *  for built-ins the budget checks cannot interrupt; loads nested in it (a require during top-level code) share its
   *  budget and watchdog, so a timeout always unwinds to the outermost caller. Throws what the code threw. */
  runModule(compiled: CompiledJs, module: RealmModule, require: unknown, console: object, isOutermost: boolean): void {
    const outer = compiled.script.runInContext(this.context) as ModuleOuter
    const inner: ModuleInner = outer(console, this.api.globalView, this.api.budgetCheck)
    if (!isOutermost) {
      Reflect.apply(inner, module.exports, [module.exports, require, module])
      return
    }
    this.startRun()
    this.api.prepareEntry(inner, module, require)
    // Twice the budget, so the budget check (with its clearer ScriptTimeout) normally fires first.
    this.entryScript.runInContext(this.context, { timeout: 2 * this.options.timeoutMs })
  }
}

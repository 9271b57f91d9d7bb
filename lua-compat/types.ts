/** Public types of lua-compat: what the proxy provides (options, RequestView) and what it gets back
 *  (CompileResult, ScriptOutcome). Owns no behaviour. The proxy (src/proxy, src/scripts) implements
 *  RequestView and acts on ScriptOutcome; nothing here imports from src/ (style.md layout rule). */

/** Structural logger: pino's Logger satisfies it. Lines carry `script` and `request_id` fields. */
export interface LuaLog {
  error(fields: Record<string, unknown>, msg: string): void
  warn(fields: Record<string, unknown>, msg: string): void
  info(fields: Record<string, unknown>, msg: string): void
  debug(fields: Record<string, unknown>, msg: string): void
}

export interface LuaRuntimeOptions {
  /** scripts.timeout_ms: CPU budget of one uninterrupted run of Lua code (restarts at every resume). */
  readonly timeoutMs: number
  /** scripts.async_timeout_ms: wall-clock limit of one runRequestScript call, suspensions included. */
  readonly asyncTimeoutMs: number
  /** scripts.regex_cache: translated ngx.re patterns kept per worker (LRU). */
  readonly regexCacheSize: number
  /** scripts.shared_dicts: dict name -> max entries, for ngx.shared.<dict> (per worker, scripts.md §6.6). */
  readonly sharedDicts: Readonly<Record<string, number>>
  readonly workerId: number
  readonly workerCount: number
  /** Product version, e.g. "1.1.0": slardar.global.version, and "slardar/1.1" in standard error pages. */
  readonly productVersion: string
  readonly log: LuaLog
  /** Dynamic config (scripts.md §8): the parsed JSON of KV `<prefix><key>`, or undefined when the key is missing,
   *  invalid with no previous valid value, or under http_upstreams/, stream_upstreams/, lua/ or js/.
   *  Synchronous and local (a snapshot lookup); return the same object while the value is unchanged so the
   *  runtime can reuse its Lua copy. */
  readonly readConfig: (key: string) => unknown
  /** Wall clock for ngx.time/now and shared-dict expiry; defaults to Date.now. Tests move it by hand. */
  readonly nowMs?: () => number
  /** Called once per module version whose top-level code failed while loading in a request (scripts.md §3,
   *  "load error in a worker"); the worker reports it to the primary. Reload failures are returned by installModules. */
  readonly onModuleLoadError?: (error: ModuleLoadError) => void
}

/** The request as the proxy sees it; lua-compat reads only the fields a script asks for (scripts.md §10). */
export interface RequestView {
  /** Method as received, e.g. "GET". */
  readonly method: string
  /** Origin-form target as received: path and query, e.g. "/a%20b/c?x=1" (for an absolute-form target, its path and query). */
  readonly target: string
  /** Routing host (proxy.md §2): lower-cased, no port, no trailing dot. */
  readonly host: string
  /** "1.0" or "1.1". */
  readonly httpVersion: string
  /** Node's req.rawHeaders: names and values alternating, arrival order, names as received. */
  readonly rawHeaders: readonly string[]
  readonly remoteAddr: string
  readonly remotePort: number
  readonly serverAddr: string
  readonly serverPort: number
  /** The X-Request-Id the proxy uses for this request. */
  readonly requestId: string
  /** Epoch milliseconds when the request head arrived (ngx.req.start_time). */
  readonly startTimeMs: number
  /** Buffers the request body. Resolves with it when it is at most proxy.retry_body_limit bytes, otherwise with null
   *  (nginx's temp-file case). Called at most once per request, and only when the script calls ngx.req.read_body().
   *  The proxy then forwards the buffered body. */
  readBody(): Promise<Buffer | null>
}

/** An opaque, compiled script.<host> chunk; hold it for the version's lifetime, then pass it to release(). */
export interface LuaChunk {
  readonly name: string
  /** Lower-case hex md5 of the source (scripts.md §2). */
  readonly version: string
}

export type CompileResult =
  | { readonly ok: true; readonly chunk: LuaChunk }
  | { readonly ok: false; readonly error: string }   // "<name>:<line>: <message>"

export type CheckResult = { readonly ok: true } | { readonly ok: false; readonly error: string }

/** A header set by the script. `value: null` removes the header. `name` is spelled as the script wrote it. */
export interface HeaderChange {
  readonly name: string
  readonly value: string | readonly string[] | null
}

/** What the script changed; every field is null when untouched, so the common case costs one check each. */
export interface RequestChanges {
  /** New request target (escaped path and query) to send upstream, or null to forward the original target. */
  readonly target: string | null
  /** Request headers to set or remove before forwarding, keyed by lower-case name. */
  readonly requestHeaders: ReadonlyMap<string, HeaderChange> | null
  /** ngx.header overrides, applied last to whatever response is sent (proxied or generated); keyed by lower-case name.
   *  Framing headers (Content-Length, Transfer-Encoding, Connection) are never included. */
  readonly responseHeaders: ReadonlyMap<string, HeaderChange> | null
}

export type ScriptOutcome =
  /** Proxy the request with `changes` applied. */
  | {
    readonly kind: 'continue'
    readonly changes: RequestChanges
    /** ngx.var.x_error_code or slardar.exit(errno.OK), for the access log; null when unset. */
    readonly xErrorCode: number | null
  }
  /** Answer without contacting an upstream; discard the unread request body. `headers` already include
   *  Content-Type and Content-Length where there is a body, X-Error-Code for slardar.exit codes >= 1000, and the
   *  script's ngx.header values. The proxy adds Server, Date and X-Request-Id. */
  | {
    readonly kind: 'respond'
    readonly status: number
    readonly headers: Readonly<Record<string, string | readonly string[]>>
    readonly body: Buffer
    readonly xErrorCode: number | null
  }
  /** ngx.exit(444): close the client connection without a response (access log status 444). */
  | { readonly kind: 'close'; readonly xErrorCode: number | null }
  /** The script failed: answer 500 with `xErrorCode` (50000001 script error, 50000002 script timeout) in the
   *  proxy's JSON error format, and log `message` and `stack` at ERROR with the script name, version and request id. */
  | {
    readonly kind: 'error'
    readonly code: 'LUA_SCRIPT_ERROR' | 'LUA_SCRIPT_TIMEOUT'
    readonly xErrorCode: 50000001 | 50000002
    readonly script: string
    readonly version: string
    readonly message: string
    readonly stack: string | null
  }

export interface ModuleLoadError {
  readonly name: string
  readonly version: string
  readonly message: string
}

export interface ModuleInstallReport {
  /** Loaded modules re-run at once because they or a module they required changed (scripts.md §3). */
  readonly reloaded: readonly string[]
  /** Reloads that failed; those modules keep their previous instance. */
  readonly errors: readonly ModuleLoadError[]
}

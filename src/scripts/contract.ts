/** The seam between the HTTP data path and the script runtimes (scripts.md §4): what the proxy asks of scripts for
 *  one request, and what it gets back. `src/proxy` codes against these types only; `src/scripts` implements them on
 *  top of lua-compat and the JS plugin runtime. Kept apart from both so either side can change its insides freely.
 *
 *  Per request the proxy does, at most:
 *  ```ts
 *  const host = scripts.forHost(routingHost)          // one Map lookup; null for the common host without scripts
 *  const run = host?.begin(request)                    // per-request state: JS ctx.vars, the Lua environment
 *  const decision = await run.onRequest()              // Lua script.<host>, then JS onRequest
 *  if (run.wantsResponse) failure = await run.onResponse(view)   // before the response head is sent, not for 101
 *  if (run.wantsLog) run.onLog(accessLogFields)        // after the response finished or the client aborted
 *  ``` */
import type { HeaderChange, RequestChanges, RequestView, ScriptOutcome } from '../../lua-compat/index.js'

export type { HeaderChange, RequestChanges }

/** The request as the proxy received it. lua-compat's RequestView already carries everything the JS `ctx.req` needs
 *  (method, target, routing host, raw headers, client address, request id, lazy body). */
export type ScriptRequest = RequestView

/** A script failed: the proxy answers 500 in its JSON error format with this code and logs the rest at ERROR. */
export interface ScriptFailure {
  readonly kind: 'error'
  /** 50000001 `script error`, 50000002 `script timeout` (proxy.md §6). */
  readonly xErrorCode: 50000001 | 50000002
  readonly runtime: 'lua' | 'js'
  readonly script: string
  readonly version: string
  readonly message: string
  readonly stack: string | null
}

export type RequestDecision =
  /** Proxy the request with `changes` applied (target, request headers; response headers are applied last to
   *  whatever response is sent). `upstream`: a name set by JS `ctx.upstream.set`, else null (use the routing host). */
  | {
    readonly kind: 'continue'
    readonly changes: RequestChanges
    readonly upstream: string | null
    /** For the access log's `x_error_code`; null when no script set one. */
    readonly xErrorCode: number | null
  }
  /** Answer without contacting an upstream, or close without a response (ngx.exit(444)): exactly lua-compat's
   *  shapes, which the JS runtime produces too. The proxy adds Server, Date and X-Request-Id to an answer and
   *  discards the unread request body. */
  | Extract<ScriptOutcome, { readonly kind: 'respond' | 'close' }>
  | ScriptFailure

/** The response about to be sent, as JS `onResponse` sees and edits it. `headers` is keyed by lower-case name and
 *  is what the proxy sends after the hook returns (framing headers are the proxy's and are ignored here). */
export interface ScriptResponse {
  readonly status: number
  readonly headers: Record<string, string | string[]>
}

/** One request's script state. Methods are called in the order of the module header, each at most once. */
export interface ScriptRun {
  onRequest(): RequestDecision | Promise<RequestDecision>
  /** True when a JS `onResponse` hook exists; otherwise the proxy skips building a ScriptResponse. */
  readonly wantsResponse: boolean
  /** Runs JS `onResponse`. A failure replaces the response with the 500 of ScriptFailure. */
  onResponse(response: ScriptResponse): ScriptFailure | null | Promise<ScriptFailure | null>
  /** True when a JS `onLog` hook exists. */
  readonly wantsLog: boolean
  /** Runs JS `onLog` with a frozen copy of the access-log fields (proxy.md §8). Errors are logged, never thrown. */
  onLog(fields: Readonly<Record<string, string | number>>): void
}

export interface HostScripts {
  begin(request: ScriptRequest): ScriptRun
}

/** One per process; always answers from the currently installed script versions. */
export interface ScriptHost {
  /** Scripts for a routing host, or null when neither runtime has `script.<host>` (or both are disabled). */
  forHost(host: string): HostScripts | null
}

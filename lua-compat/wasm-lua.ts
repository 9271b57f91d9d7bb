/** The raw Lua 5.4 C API inside wasmoon's WebAssembly module, and the one place that touches wasm memory.
 *  Owns: loading the module (once per process), string transfer in both directions, stack helpers, registering
 *  JS functions as Lua C functions, and converting JSON-like JS values into Lua tables.
 *  wasmoon's high-level engine (Thread/Global, its type extensions) is not used: its per-call decorations and
 *  UTF-8-only strings cost more than the whole per-request budget (scripts.md §10) and corrupt binary strings
 *  such as ngx.md5_bin's. Lua semantics (sandbox, API shim) are the prelude's; request logic is runtime.ts's. */

import { LuaFactory, type LuaWasm } from 'wasmoon'

/** Lua status and type codes (lua.h). */
export const LUA_OK = 0
export const LUA_YIELD = 1
export const LUA_TNIL = 0
export const LUA_TBOOLEAN = 1
export const LUA_TLIGHTUSERDATA = 2
export const LUA_TNUMBER = 3
export const LUA_TSTRING = 4
const LUA_REGISTRYINDEX = -1001000
const LUA_MULTRET = -1
const LUA_MASKCOUNT = 8
/** Lua guarantees C functions only 20 free stack slots; ask for more before pushing many results. */
const LUA_MINSTACK = 20

/** The exports of wasmoon's glue.wasm we call directly (emscripten's `_name` convention, C ABI: pointers are numbers,
 *  lua_Integer is a BigInt). Typed here because wasmoon's d.ts only types its cwrap'ed wrappers, which convert
 *  every string through UTF-8 and cost ~4x more per call. */
interface RawLua {
  HEAPU8: Uint8Array
  HEAPU32: Uint32Array
  _malloc(size: number): number
  _free(ptr: number): void
  addFunction(fn: (...args: number[]) => number | undefined, signature: string): number
  removeFunction(ptr: number): void
  _luaL_newstate(): number
  _luaL_openlibs(L: number): void
  _lua_close(L: number): void
  _lua_gettop(L: number): number
  _lua_settop(L: number, idx: number): void
  _lua_checkstack(L: number, n: number): number
  _lua_type(L: number, idx: number): number
  _lua_tolstring(L: number, idx: number, lenPtr: number): number
  _lua_tonumberx(L: number, idx: number, isNumPtr: number): number
  _lua_toboolean(L: number, idx: number): number
  _lua_touserdata(L: number, idx: number): number
  _lua_pushnil(L: number): void
  _lua_pushnumber(L: number, n: number): void
  _lua_pushinteger(L: number, n: bigint): void
  _lua_pushlstring(L: number, ptr: number, len: number): number
  _lua_pushboolean(L: number, b: number): void
  _lua_pushlightuserdata(L: number, p: number): void
  _lua_pushcclosure(L: number, fn: number, n: number): void
  _lua_pushvalue(L: number, idx: number): void
  _lua_createtable(L: number, narr: number, nrec: number): void
  _lua_rawset(L: number, idx: number): void
  _lua_rawseti(L: number, idx: number, n: bigint): void
  _lua_rawgeti(L: number, idx: number, n: bigint): number
  _lua_setupvalue(L: number, funcIdx: number, n: number): number
  _lua_concat(L: number, n: number): void
  _luaL_ref(L: number, t: number): number
  _luaL_unref(L: number, t: number, ref: number): void
  _luaL_where(L: number, level: number): void
  _luaL_loadbufferx(L: number, buf: number, size: number, name: number, mode: number): number
  _luaL_tolstring(L: number, idx: number, lenPtr: number): number
  _luaL_traceback(L: number, L1: number, msg: number, level: number): void
  _lua_newthread(L: number): number
  _lua_resume(L: number, from: number, nargs: number, nresPtr: number): number
  _lua_resetthread(L: number): number
  _lua_error(L: number): number
  _lua_yieldk(L: number, nresults: number, ctx: number, k: number): number
  _lua_isyieldable(L: number): number
  _lua_callk(L: number, nargs: number, nresults: number, ctx: number, k: number): void
  _lua_pcallk(L: number, nargs: number, nresults: number, errfunc: number, ctx: number, k: number): number
  _lua_sethook(L: number, fn: number, mask: number, count: number): void
}

let modulePromise: Promise<LuaWasm> | null = null

/** One wasm instance per process: every runtime (one per worker; several in tests) is its own lua_State in it. */
function loadLuaWasm(): Promise<LuaWasm> {
  modulePromise ??= new LuaFactory().getLuaModule()
  return modulePromise
}

/** A JS function callable from Lua: reads its arguments from L's stack, pushes results, returns their count. */
export type HostFunction = (L: number) => number

/** A JSON-like value pushed by pushJson: null becomes the given null sentinel. */
export type JsonLike = null | boolean | number | string | readonly JsonLike[] | { readonly [key: string]: JsonLike }

export class WasmLua {
  /** The main state. */
  readonly L: number
  private readonly raw: RawLua
  /** Pointer to a size_t that lua_tolstring writes string lengths into. */
  private readonly lenPtr: number
  private scratchPtr: number
  private scratchSize = 4096
  /** A Buffer over wasm memory for fast latin1/utf8 decoding; replaced when the memory grows. */
  private heap: Buffer
  private readonly functionPtrs: number[] = []
  private readonly allocations: number[] = []
  private isClosed = false

  private constructor(raw: RawLua) {
    this.raw = raw
    this.L = raw._luaL_newstate()
    if (this.L === 0) throw new Error('luaL_newstate failed (out of memory)')
    raw._luaL_openlibs(this.L)
    this.lenPtr = raw._malloc(8)
    this.scratchPtr = raw._malloc(this.scratchSize)
    this.heap = Buffer.from(raw.HEAPU8.buffer)
  }

  static async create(): Promise<WasmLua> {
    const luaWasm = await loadLuaWasm()
    return new WasmLua(luaWasm.module as unknown as RawLua)
  }

  private heapView(): Buffer {
    const buffer = this.raw.HEAPU8.buffer
    if (this.heap.buffer !== buffer) this.heap = Buffer.from(buffer)
    return this.heap
  }

  /** A scratch area of at least `size` bytes; valid until the next call that may allocate. */
  private scratch(size: number): number {
    if (size > this.scratchSize) {
      this.raw._free(this.scratchPtr)
      this.scratchSize = Math.max(size, this.scratchSize * 2)
      this.scratchPtr = this.raw._malloc(this.scratchSize)
      if (this.scratchPtr === 0) throw new Error(`wasm malloc of ${this.scratchSize} bytes failed`)
    }
    return this.scratchPtr
  }

  // ---- reading the stack ----

  type(L: number, idx: number): number { return this.raw._lua_type(L, idx) }

  top(L: number): number { return this.raw._lua_gettop(L) }

  /** The value at idx as a binary string (one char per byte), or null when it is neither a string nor a number. */
  binary(L: number, idx: number): string | null {
    const ptr = this.raw._lua_tolstring(L, idx, this.lenPtr)
    if (ptr === 0) return null
    const len = this.raw.HEAPU32[this.lenPtr >>> 2] as number
    return this.heapView().toString('latin1', ptr, ptr + len)
  }

  /** Like binary(), decoding UTF-8: for text meant for people (log lines, error messages). */
  text(L: number, idx: number): string | null {
    const ptr = this.raw._lua_tolstring(L, idx, this.lenPtr)
    if (ptr === 0) return null
    const len = this.raw.HEAPU32[this.lenPtr >>> 2] as number
    return this.heapView().toString('utf8', ptr, ptr + len)
  }

  /** luaL_tolstring: any value as text, honouring __tostring (pushes and pops the result). */
  describe(L: number, idx: number): string {
    const ptr = this.raw._luaL_tolstring(L, idx, this.lenPtr)
    const len = this.raw.HEAPU32[this.lenPtr >>> 2] as number
    const text = this.heapView().toString('utf8', ptr, ptr + len)
    this.raw._lua_settop(L, -2)
    return text
  }

  number(L: number, idx: number): number { return this.raw._lua_tonumberx(L, idx, 0) }

  boolean(L: number, idx: number): boolean { return this.raw._lua_toboolean(L, idx) !== 0 }

  lightUserdata(L: number, idx: number): number { return this.raw._lua_touserdata(L, idx) }

  // ---- pushing ----

  pushNil(L: number): void { this.raw._lua_pushnil(L) }

  pushBoolean(L: number, b: boolean): void { this.raw._lua_pushboolean(L, b ? 1 : 0) }

  /** Integers within 2^53 become Lua integers (so tostring gives "3", not "3.0"), others floats. */
  pushNumber(L: number, n: number): void {
    if (Number.isSafeInteger(n)) this.raw._lua_pushinteger(L, BigInt(n))
    else this.raw._lua_pushnumber(L, n)
  }

  /** Pushes a binary string: each char code is one byte (chars above 0xff must not occur). */
  pushBinary(L: number, s: string): void {
    const ptr = this.scratch(s.length)
    const written = this.heapView().write(s, ptr, s.length, 'latin1')
    this.raw._lua_pushlstring(L, ptr, written)
  }

  /** Pushes a JS string as UTF-8 (text from JS: config values, error messages, host names). */
  pushText(L: number, s: string): void {
    const ptr = this.scratch(s.length * 3)
    const written = this.heapView().write(s, ptr, s.length * 3, 'utf8')
    this.raw._lua_pushlstring(L, ptr, written)
  }

  pushBytes(L: number, bytes: Uint8Array): void {
    const ptr = this.scratch(bytes.length)
    this.heapView().set(bytes, ptr)
    this.raw._lua_pushlstring(L, ptr, bytes.length)
  }

  pushLightUserdata(L: number, ptr: number): void { this.raw._lua_pushlightuserdata(L, ptr) }

  /** Makes room for `n` more values before a host function pushes many results. */
  ensureStack(L: number, n: number): void {
    if (n > LUA_MINSTACK && this.raw._lua_checkstack(L, n) === 0) throw new Error(`cannot grow the Lua stack by ${n}`)
  }

  /** Converts JSON-like data into fresh Lua tables (objects and arrays alike; arrays are 1-based sequences).
   *  `nullPtr` is the lightuserdata standing for JSON null (ngx.null / cjson.null). */
  pushJson(L: number, value: JsonLike, nullPtr: number, depth = 0): void {
    if (depth > 1000) throw new Error('value nested more than 1000 levels deep')
    if (value === null) { this.pushLightUserdata(L, nullPtr); return }
    switch (typeof value) {
      case 'boolean': this.pushBoolean(L, value); return
      case 'number': this.pushNumber(L, value); return
      case 'string': this.pushText(L, value); return
      default: break
    }
    this.ensureStack(L, 3)
    if (Array.isArray(value)) {
      const items = value as readonly JsonLike[]
      this.raw._lua_createtable(L, items.length, 0)
      for (let k = 0; k < items.length; k++) {
        this.pushJson(L, items[k] as JsonLike, nullPtr, depth + 1)
        this.raw._lua_rawseti(L, -2, BigInt(k + 1))
      }
      return
    }
    const entries = Object.entries(value)
    this.raw._lua_createtable(L, 0, entries.length)
    for (const [key, item] of entries) {
      this.pushText(L, key)
      this.pushJson(L, item, nullPtr, depth + 1)
      this.raw._lua_rawset(L, -3)
    }
  }

  // ---- registry, functions, threads ----

  /** Pops the top value into the registry; returns its reference. */
  ref(L: number): number { return this.raw._luaL_ref(L, LUA_REGISTRYINDEX) }

  unref(ref: number): void { this.raw._luaL_unref(this.L, LUA_REGISTRYINDEX, ref) }

  pushRef(L: number, ref: bigint): void { this.raw._lua_rawgeti(L, LUA_REGISTRYINDEX, ref) }

  /** Registers `fn` as a Lua C function and returns its function-table pointer (freed by close()).
   *  A JS Error thrown by `fn` becomes a Lua error prefixed with the position of the first caller outside chunk
   *  `internalChunk` ("script.x:3: ..."), so errors point at the script, not at the API wrapper that called us.
   *  Anything else thrown is emscripten's longjmp unwinding a Lua error through this frame, and must pass. */
  registerFunction(fn: HostFunction, internalChunk: string): number {
    const raw = this.raw
    const internalPrefix = internalChunk + ':'
    const ptr = raw.addFunction((L: number): number => {
      try {
        return fn(L)
      } catch (err) {
        if (!(err instanceof Error)) throw err
        for (let level = 1; level < 8; level++) {
          raw._luaL_where(L, level)
          if (!(this.binary(L, -1) ?? '').startsWith(internalPrefix)) break
          raw._lua_settop(L, -2)
        }
        this.pushText(L, err.message)
        raw._lua_concat(L, 2)
        return raw._lua_error(L)
      }
    }, 'ii')
    this.functionPtrs.push(ptr)
    return ptr
  }

  /** Pushes a new table mapping each name to its host function (see registerFunction for `internalChunk`). */
  pushFunctionTable(L: number, fns: Readonly<Record<string, HostFunction>>, internalChunk: string): void {
    const entries = Object.entries(fns)
    this.raw._lua_createtable(L, 0, entries.length)
    for (const [name, fn] of entries) {
      this.pushText(L, name)
      this.raw._lua_pushcclosure(L, this.registerFunction(fn, internalChunk), 0)
      this.raw._lua_rawset(L, -3)
    }
  }

  pushCopy(L: number, idx: number): void { this.raw._lua_pushvalue(L, idx) }

  /** Installs `onCount` as a count hook every `instructions` VM instructions on the main state; threads created
   *  afterwards (lua_newthread, coroutine.create) inherit it. */
  setCountHook(onCount: (L: number) => void, instructions: number): void {
    const ptr = this.raw.addFunction((L: number): undefined => { onCount(L) }, 'vii')
    this.functionPtrs.push(ptr)
    this.raw._lua_sethook(this.L, ptr, LUA_MASKCOUNT, instructions)
  }

  /** Compiles `source` (UTF-8) as chunk `=name` and pushes the function; returns null on success or the message
   *  ("name:line: message"), with nothing pushed. Text mode only: binary chunks can corrupt the VM. */
  load(L: number, source: string, name: string): string | null {
    const sourceBytes = Buffer.from(source, 'utf8')
    const nameBytes = Buffer.from('=' + name + '\0', 'utf8')
    const ptr = this.raw._malloc(sourceBytes.length + nameBytes.length + 2)
    try {
      const heap = this.heapView()
      heap.set(sourceBytes, ptr)
      heap.set(nameBytes, ptr + sourceBytes.length)
      heap.write('t\0', ptr + sourceBytes.length + nameBytes.length, 'latin1')
      const rc = this.raw._luaL_loadbufferx(L, ptr, sourceBytes.length, ptr + sourceBytes.length,
        ptr + sourceBytes.length + nameBytes.length)
      if (rc === LUA_OK) return null
      const message = this.text(L, -1) ?? 'unknown compile error'
      this.raw._lua_settop(L, -2)
      return message
    } finally {
      this.raw._free(ptr)
    }
  }

  /** Sets upvalue n of the function at funcIdx to the value on top (popped). */
  setUpvalue(L: number, funcIdx: number, n: number): void { this.raw._lua_setupvalue(L, funcIdx, n) }

  /** Calls the function below `nargs` arguments on L in protected mode; returns the Lua status. */
  pcall(L: number, nargs: number, nresults: number): number {
    return this.raw._lua_pcallk(L, nargs, nresults, 0, 0, 0)
  }

  /** Calls without a continuation, so nothing inside may yield ("attempt to yield across a C-call boundary"),
   *  and errors propagate to the enclosing protected call. Used from inside host functions only. */
  callNoYield(L: number, nargs: number): void { this.raw._lua_callk(L, nargs, LUA_MULTRET, 0, 0) }

  newThread(): number { return this.raw._lua_newthread(this.L) }

  resume(thread: number, nargs: number, nresPtr: number): number {
    return this.raw._lua_resume(thread, 0, nargs, nresPtr)
  }

  /** Closes a suspended or failed thread's pending to-be-closed variables and makes it reusable. */
  resetThread(thread: number): number { return this.raw._lua_resetthread(thread) }

  isYieldable(L: number): boolean { return this.raw._lua_isyieldable(L) !== 0 }

  /** From a count hook only: suspends the running coroutine (hooks may yield with no values). */
  yieldFromHook(L: number): void { this.raw._lua_yieldk(L, 0, 0, 0) }

  /** Raises a Lua error with message `text` (longjmps; never returns normally). */
  raise(L: number, text: string): never {
    this.pushText(L, text)
    this.raw._lua_error(L)
    throw new Error('unreachable: lua_error returned')
  }

  /** A traceback of `thread` (after a failed resume its stack is still there), prefixed by `message`. */
  traceback(thread: number, message: string): string {
    this.pushText(this.L, message)
    const msgTop = this.top(this.L)
    const ptr = this.raw._lua_tolstring(this.L, msgTop, 0)
    this.raw._luaL_traceback(this.L, thread, ptr, 0)
    const text = this.text(this.L, -1) ?? message
    this.raw._lua_settop(this.L, msgTop - 1)
    return text
  }

  /** Wasm memory owned by this state, freed by close(). */
  malloc(size: number): number {
    const ptr = this.raw._malloc(size)
    if (ptr === 0) throw new Error(`wasm malloc of ${size} bytes failed`)
    this.allocations.push(ptr)
    return ptr
  }

  readInt32(ptr: number): number { return (this.raw.HEAPU32[ptr >>> 2] as number) | 0 }

  settop(L: number, idx: number): void { this.raw._lua_settop(L, idx) }

  close(): void {
    if (this.isClosed) return
    this.isClosed = true
    this.raw._lua_close(this.L)
    for (const ptr of this.functionPtrs) this.raw.removeFunction(ptr)
    this.raw._free(this.lenPtr)
    this.raw._free(this.scratchPtr)
    for (const ptr of this.allocations) this.raw._free(ptr)
  }
}

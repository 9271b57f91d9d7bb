/** The Lua half of lua-compat, shipped as a TS string so tsc's output is self-contained. It runs once per runtime
 *  with the full standard library and builds everything a script can reach: the read-only sandbox globals
 *  (scripts.md §6), ngx (§6.1-6.6), errno and slardar.exit (§7), utils and slardar.<key> (§8), cjson, bit,
 *  table.new/clear and the Lua 5.1 shims (§6.7), and require with dependency recording (§3).
 *  Everything that needs the request, node:crypto or RegExp calls a host function (runtime.ts) through HOST.
 *  It returns the entry points runtime.ts keeps in the registry. */

/** How a script suspends (first value after the SUSPEND marker in a yield); runtime.ts decides what each means. */
export const enum Suspend {
  /** ngx.exit(status) */
  Exit = 1,
  /** ngx.redirect(uri, status) */
  Redirect = 2,
  /** slardar.exit(err): code, msg, httpcode */
  ErrnoExit = 3,
  /** ngx.sleep(seconds) */
  Sleep = 4,
  /** ngx.req.read_body() */
  ReadBody = 5,
  /** coroutine.yield() in the request's own coroutine: give other requests a turn (like ngx.sleep(0)) */
  Yield = 6,
}

/** ngx.log levels (OpenResty's values). */
export const enum LogLevel {
  Stderr = 0, Emerg = 1, Alert = 2, Crit = 3, Err = 4, Warn = 5, Notice = 6, Info = 7, Debug = 8,
}

export const PRELUDE_NAME = 'lua-compat'

export const PRELUDE_SOURCE = String.raw`
local HOST, NULL, SUSPEND, EMPTY_ARRAY, INFO = ...

local type, tostring, tonumber, select, error, pcall, xpcall, assert =
  type, tostring, tonumber, select, error, pcall, xpcall, assert
local rawget, rawset, rawequal, rawlen, next, pairs, ipairs =
  rawget, rawset, rawequal, rawlen, next, pairs, ipairs
local setmetatable, getmetatable, load, collectgarbage = setmetatable, getmetatable, load, collectgarbage
local co_create, co_resume, co_yield, co_status, co_running, co_isyieldable, co_close =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status, coroutine.running,
  coroutine.isyieldable, coroutine.close
local str_byte, str_char, str_find, str_format, str_gsub, str_gmatch, str_lower, str_match, str_sub =
  string.byte, string.char, string.find, string.format, string.gsub, string.gmatch, string.lower,
  string.match, string.sub
local tbl_concat, tbl_sort, tbl_unpack = table.concat, table.sort, table.unpack
local math_floor, math_fmod, math_huge, math_tointeger, math_type =
  math.floor, math.fmod, math.huge, math.tointeger, math.type
local os_date = os.date
local d_getinfo, d_getlocal, d_getupvalue = debug.getinfo, debug.getlocal, debug.getupvalue

local host_log, host_say = HOST.log, HOST.say
local var_get, var_set = HOST.var_get, HOST.var_set
local call_noyield = HOST.call_noyield

local K_EXIT, K_REDIRECT, K_ERRNO_EXIT, K_SLEEP, K_READ_BODY, K_YIELD =
  ${Suspend.Exit}, ${Suspend.Redirect}, ${Suspend.ErrnoExit}, ${Suspend.Sleep}, ${Suspend.ReadBody}, ${Suspend.Yield}
local LOG_ERR, LOG_NOTICE = ${LogLevel.Err}, ${LogLevel.Notice}

-- The running request's Lua-side state ({co = coroutine, ctx = table|nil}), nil outside requests. Only one
-- coroutine runs at a time; every function that suspends puts its own request back when it is resumed.
local CUR = nil

-- Read-only proxies ----------------------------------------------------------------------------------------

local READONLY = setmetatable({}, { __mode = "k" })   -- proxy -> name, for messages and sandbox rawset

local function deny(t, k)
  error(str_format("attempt to modify read-only table '%s' (field '%s')", READONLY[t] or "?", tostring(k)), 2)
end

local function readonly(name, t, newindex)
  local proxy = setmetatable({}, {
    __index = t,
    __newindex = newindex or deny,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
  })
  READONLY[proxy] = name
  return proxy
end

local function copy(t, without)
  local out = {}
  for k, v in pairs(t) do
    if not (without and without[k]) then out[k] = v end
  end
  return out
end

local function argerror(fname, n, msg)
  error(str_format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

-- Suspension ---------------------------------------------------------------------------------------------

local function suspend(kind, a, b, c)
  if not co_isyieldable() then
    error("cannot suspend here: module top-level code and callbacks called from C functions must not yield", 3)
  end
  local req = CUR
  co_yield(SUSPEND, kind, a, b, c)
  CUR = req
end

-- A suspension raised inside a script's own coroutine is passed up to the runtime, and the coroutine is
-- resumed with the answer, so ngx.sleep and friends work at any coroutine depth (as in OpenResty).
local function pass_through(co, ok, first, ...)
  if ok and first == SUSPEND and co_status(co) == "suspended" then
    return pass_through(co, co_resume(co, co_yield(SUSPEND, ...)))
  end
  return ok, first, ...
end

local function sb_resume(co, ...)
  return pass_through(co, co_resume(co, ...))
end

local function wrap_results(ok, ...)
  if not ok then error((...), 0) end
  return ...
end

local function sb_wrap(f)
  local co = co_create(f)
  return function(...) return wrap_results(pass_through(co, co_resume(co, ...))) end
end

local function sb_yield(...)
  local req = CUR
  if req ~= nil and co_running() == req.co then
    -- A bare yield in the request's own coroutine: hand the worker to other requests, then continue.
    return suspend(K_YIELD)
  end
  return co_yield(...)
end

-- Logging ------------------------------------------------------------------------------------------------

local function log_text(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    if v == NULL then parts[i] = "null" else parts[i] = tostring(v) end
  end
  return tbl_concat(parts)
end

local function ngx_log(level, ...)
  if math_type(level) ~= "integer" or level < 0 or level > 8 then argerror("log", 1, "bad log level") end
  return host_log(level, log_text(...))
end

local function sb_print(...)
  return host_log(LOG_NOTICE, log_text(...))
end

-- cjson (lua-cjson 2.1 defaults) -------------------------------------------------------------------------

local EMPTY_ARRAY_MT = {}
local ARRAY_MT = {}
local JSON_ESCAPES = { ['"'] = '\\"', ['\\'] = '\\\\', ['/'] = '\\/', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\127'] = '\\u007f' }
for i = 0, 31 do
  local c = str_char(i)
  if not JSON_ESCAPES[c] then JSON_ESCAPES[c] = str_format('\\u%04x', i) end
end

local encode_value

local function encode_number(n)
  if math_type(n) == "integer" then return tostring(n) end
  if n ~= n or n == math_huge or n == -math_huge then
    error("Cannot serialise number: must not be NaN or Infinity", 0)
  end
  return str_format("%.14g", n)
end

-- lua-cjson's lua_array_length: > 0 array length, 0 empty, -1 not an array; excessively sparse arrays fail.
local function array_length(t)
  local max, items = 0, 0
  for k in next, t do
    if math_type(k) == "float" then k = math_tointeger(k) end
    if math_type(k) ~= "integer" or k < 1 then return -1 end
    if k > max then max = k end
    items = items + 1
  end
  if max > 10 and max > items * 2 then error("Cannot serialise table: excessively sparse array", 0) end
  return max
end

local function encode_table(t, depth, out)
  if depth > 1000 then error("Cannot serialise, excessive nesting (1001)", 0) end
  local mt = getmetatable(t)
  local len
  if mt == ARRAY_MT then
    len = #t
  else
    len = array_length(t)
    if len == 0 and mt ~= EMPTY_ARRAY_MT then len = -1 end
  end
  if len >= 0 then
    out[#out + 1] = "["
    for i = 1, len do
      if i > 1 then out[#out + 1] = "," end
      encode_value(rawget(t, i), depth, out)
    end
    out[#out + 1] = "]"
    return
  end
  out[#out + 1] = "{"
  local first = true
  for k, v in next, t do
    local tk = type(k)
    if tk == "number" then k = encode_number(k)
    elseif tk ~= "string" then
      error("Cannot serialise " .. tk .. ": table key must be a number or string", 0)
    end
    if not first then out[#out + 1] = "," end
    first = false
    out[#out + 1] = '"' .. str_gsub(k, '[%c"\\/]', JSON_ESCAPES) .. '":'
    encode_value(v, depth, out)
  end
  out[#out + 1] = "}"
end

encode_value = function(v, depth, out)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = '"' .. str_gsub(v, '[%c"\\/]', JSON_ESCAPES) .. '"'
  elseif tv == "number" then
    out[#out + 1] = encode_number(v)
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "nil" or v == NULL then
    out[#out + 1] = "null"
  elseif v == EMPTY_ARRAY then
    out[#out + 1] = "[]"
  elseif tv == "table" then
    encode_table(v, depth + 1, out)
  else
    error("Cannot serialise " .. tv .. ": type not supported", 0)
  end
end

local function json_encode(v)
  local out = {}
  encode_value(v, 0, out)
  return tbl_concat(out)
end

local decode_value

local function decode_error(s, pos, expected)
  local found
  if pos > #s then found = "T_END" else found = "invalid token" end
  error(str_format("Expected %s but found %s at character %d", expected, found, pos), 0)
end

local function skip_space(s, pos)
  return str_find(s, "[^ \t\n\r]", pos) or (#s + 1)
end

local function utf8_char(cp)
  if cp < 0x80 then return str_char(cp) end
  if cp < 0x800 then return str_char(0xC0 | (cp >> 6), 0x80 | (cp & 0x3F)) end
  if cp < 0x10000 then return str_char(0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)) end
  return str_char(0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F))
end

local JSON_UNESCAPES = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }

local function decode_string(s, pos)
  -- pos is just after the opening quote
  local parts = {}
  while true do
    local q = str_find(s, '["\\]', pos)
    if not q then decode_error(s, #s + 1, "string end") end
    parts[#parts + 1] = str_sub(s, pos, q - 1)
    if str_byte(s, q) == 34 then return tbl_concat(parts), q + 1 end
    local e = str_sub(s, q + 1, q + 1)
    if e == "u" then
      local hex = str_match(s, "^%x%x%x%x", q + 2)
      if not hex then decode_error(s, q, "unicode escape") end
      local cp = tonumber(hex, 16)
      pos = q + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local low = str_match(s, "^\\u(%x%x%x%x)", pos)
        local lcp = low and tonumber(low, 16)
        if lcp and lcp >= 0xDC00 and lcp <= 0xDFFF then
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lcp - 0xDC00)
          pos = pos + 6
        end
      end
      parts[#parts + 1] = utf8_char(cp)
    else
      local c = JSON_UNESCAPES[e]
      if not c then decode_error(s, q, "valid escape") end
      parts[#parts + 1] = c
      pos = q + 2
    end
  end
end

local function decode_number(s, pos)
  local text = str_match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if not text or text == "-" then decode_error(s, pos, "value") end
  local n = tonumber(text)
  if not n then decode_error(s, pos, "value") end
  return n, pos + #text
end

decode_value = function(s, pos, depth)
  pos = skip_space(s, pos)
  local c = str_byte(s, pos)
  if c == 123 then -- {
    if depth >= 1000 then error(str_format("Found too many nested data structures (1001) at character %d", pos), 0) end
    local t = {}
    pos = skip_space(s, pos + 1)
    if str_byte(s, pos) == 125 then return t, pos + 1 end
    while true do
      if str_byte(s, pos) ~= 34 then decode_error(s, pos, "object key string") end
      local k
      k, pos = decode_string(s, pos + 1)
      pos = skip_space(s, pos)
      if str_byte(s, pos) ~= 58 then decode_error(s, pos, "colon") end
      t[k], pos = decode_value(s, pos + 1, depth + 1)
      pos = skip_space(s, pos)
      local d = str_byte(s, pos)
      if d == 125 then return t, pos + 1 end
      if d ~= 44 then decode_error(s, pos, "comma or object end") end
      pos = skip_space(s, pos + 1)
    end
  elseif c == 91 then -- [
    if depth >= 1000 then error(str_format("Found too many nested data structures (1001) at character %d", pos), 0) end
    local t, n = {}, 0
    pos = skip_space(s, pos + 1)
    if str_byte(s, pos) == 93 then return t, pos + 1 end
    while true do
      n = n + 1
      t[n], pos = decode_value(s, pos, depth + 1)
      pos = skip_space(s, pos)
      local d = str_byte(s, pos)
      if d == 93 then return t, pos + 1 end
      if d ~= 44 then decode_error(s, pos, "comma or array end") end
      pos = pos + 1
    end
  elseif c == 34 then
    return decode_string(s, pos + 1)
  elseif c == 116 and str_sub(s, pos, pos + 3) == "true" then return true, pos + 4
  elseif c == 102 and str_sub(s, pos, pos + 4) == "false" then return false, pos + 5
  elseif c == 110 and str_sub(s, pos, pos + 3) == "null" then return NULL, pos + 4
  elseif c == 45 or (c and c >= 48 and c <= 57) then return decode_number(s, pos)
  end
  decode_error(s, pos, "value")
end

local function json_decode(s)
  if type(s) ~= "string" then
    if type(s) == "number" then s = tostring(s) else argerror("decode", 1, "string expected, got " .. type(s)) end
  end
  local v, pos = decode_value(s, 1, 0)
  pos = skip_space(s, pos)
  if pos <= #s then decode_error(s, pos, "the end") end
  return v
end

local cjson = readonly("cjson", {
  encode = json_encode, decode = json_decode, null = NULL, empty_array = EMPTY_ARRAY,
  empty_array_mt = EMPTY_ARRAY_MT, array_mt = ARRAY_MT, _VERSION = "2.1.0",
})

local function safe(f)
  return function(...)
    local ok, v = pcall(f, ...)
    if ok then return v end
    return nil, v
  end
end

local cjson_safe = readonly("cjson.safe", {
  encode = safe(json_encode), decode = safe(json_decode), null = NULL, empty_array = EMPTY_ARRAY,
  empty_array_mt = EMPTY_ARRAY_MT, array_mt = ARRAY_MT, _VERSION = "2.1.0",
})

-- bit (LuaJIT's, 32-bit results) -------------------------------------------------------------------------

local function tobit(x)
  if math_type(x) ~= "integer" then
    local n = tonumber(x)
    if n == nil then error("bad argument to bit operation (number expected, got " .. type(x) .. ")", 3) end
    if math_type(n) == "float" then
      if n ~= n or n == math_huge or n == -math_huge then return 0 end
      -- LuaJIT adds 2^52+2^51 and keeps the low 32 bits: round half to even, modulo 2^32.
      n = math_fmod(n, 4294967296.0)
      n = math_tointeger((n + 6755399441055744.0) - 6755399441055744.0)
    end
    x = n
  end
  x = x & 0xFFFFFFFF
  if x >= 0x80000000 then return x - 0x100000000 end
  return x
end

local function fold(op)
  return function(x, ...)
    local r = tobit(x)
    for i = 1, select("#", ...) do r = op(r, tobit((select(i, ...)))) end
    return tobit(r)
  end
end

local bit = readonly("bit", {
  tobit = function(x) return tobit(x) end,
  band = fold(function(a, b) return a & b end),
  bor = fold(function(a, b) return a | b end),
  bxor = fold(function(a, b) return a ~ b end),
  bnot = function(x) return tobit(~tobit(x)) end,
  lshift = function(x, n) return tobit(tobit(x) << (tobit(n) & 31)) end,
  rshift = function(x, n) return tobit((tobit(x) & 0xFFFFFFFF) >> (tobit(n) & 31)) end,
  arshift = function(x, n) return tobit(tobit(x) >> (tobit(n) & 31)) end,
  rol = function(x, n)
    local u, s = tobit(x) & 0xFFFFFFFF, tobit(n) & 31
    return tobit((u << s) | (u >> (32 - s)))
  end,
  ror = function(x, n)
    local u, s = tobit(x) & 0xFFFFFFFF, tobit(n) & 31
    return tobit((u >> s) | (u << (32 - s)))
  end,
  bswap = function(x)
    local u = tobit(x) & 0xFFFFFFFF
    return tobit(((u >> 24) & 0xFF) | ((u >> 8) & 0xFF00) | ((u << 8) & 0xFF0000) | ((u << 24) & 0xFF000000))
  end,
  tohex = function(x, n)
    n = tobit(n or 8)
    local upper = n < 0
    if upper then n = -n end
    if n > 8 then n = 8 end
    return str_format("%0" .. n .. (upper and "X" or "x"), tobit(x) & ((1 << (n * 4)) - 1))
  end,
})

local function table_new() return {} end
local function table_clear(t)
  for k in next, t do t[k] = nil end
end

-- URI and args codecs (OpenResty's escape_uri/unescape_uri/encode_args/decode_args) ----------------------

local function hex_byte(c) return str_format("%%%02X", str_byte(c)) end
local function byte_of_hex(h) return str_char(tonumber(h, 16)) end

local function to_str(v, fname)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "number" then return tostring(v) end
  if tv == "nil" then return "" end
  argerror(fname, 1, "string expected, got " .. tv)
end

local function escape_uri(s, kind)
  s = to_str(s, "escape_uri")
  if kind == 0 then
    -- nginx's NGX_ESCAPE_URI: space, "#", "%", "?", controls and bytes >= 0x7f
    return (str_gsub(s, "[\0-\32#%%%?\127-\255]", hex_byte))
  end
  return (str_gsub(s, "[^%w%-%._~]", hex_byte))
end

local function unescape_uri(s)
  s = to_str(s, "unescape_uri")
  s = str_gsub(s, "+", " ")
  return (str_gsub(s, "%%(%x%x)", byte_of_hex))
end

local function encode_args(t)
  if type(t) ~= "table" then argerror("encode_args", 1, "table expected, got " .. type(t)) end
  local parts = {}
  for k, v in pairs(t) do
    if type(k) ~= "string" then k = tostring(k) end
    local ek = escape_uri(k)
    local tv = type(v)
    if tv == "table" then
      for _, item in ipairs(v) do
        if item == true then parts[#parts + 1] = ek
        elseif item ~= false then parts[#parts + 1] = ek .. "=" .. escape_uri(item) end
      end
    elseif v == true then
      parts[#parts + 1] = ek
    elseif v ~= false then
      parts[#parts + 1] = ek .. "=" .. escape_uri(v)
    end
  end
  return tbl_concat(parts, "&")
end

local function decode_args(s, max)
  s = to_str(s, "decode_args")
  max = max or 100
  local args, count = {}, 0
  for pair in str_gmatch(s, "[^&]+") do
    if max > 0 and count >= max then return args, "truncated" end
    local eq = str_find(pair, "=", 1, true)
    local k, v
    if eq then
      k, v = unescape_uri(str_sub(pair, 1, eq - 1)), unescape_uri(str_sub(pair, eq + 1))
    else
      k, v = unescape_uri(pair), true
    end
    if k ~= "" then
      local old = args[k]
      if old == nil then args[k] = v
      elseif type(old) == "table" then old[#old + 1] = v
      else args[k] = { old, v } end
      count = count + 1
    end
  end
  return args
end

-- ngx.re ---------------------------------------------------------------------------------------------------

local re_exec, re_names, re_sub = HOST.re_exec, HOST.re_names, HOST.re_sub

local function subject_arg(s, fname)
  local ts = type(s)
  if ts == "string" then return s end
  if ts == "number" then return tostring(s) end
  argerror(fname, 1, "string expected, got " .. ts)
end

local function regex_arg(re, fname)
  if type(re) ~= "string" then argerror(fname, 2, "string expected, got " .. type(re)) end
  return re
end

-- Builds the captures table from re_exec's results (ncap, has_names, offsets...); nil, err on failure.
local function captures(subject, regex, options, res, ncap, has_names, ...)
  local m = res or {}
  for i = 0, ncap do
    local s, e = select(2 * i + 1, ...)
    if s >= 0 then m[i] = str_sub(subject, s + 1, e) else m[i] = false end
  end
  if has_names then
    local names = { re_names(regex, options) }
    for j = 1, #names, 2 do m[names[j]] = m[names[j + 1]] end
  end
  return m
end

local function re_match(subject, regex, options, ctx, res)
  subject = subject_arg(subject, "match")
  regex = regex_arg(regex, "match")
  options = options or ""
  local pos = 0
  if ctx then pos = (ctx.pos or 1) - 1 end
  local r = { re_exec(subject, regex, options, pos) }
  if r[1] == nil then return nil, r[2] end
  if r[1] == false then return nil end
  if ctx then ctx.pos = r[4] + 1 end
  return captures(subject, regex, options, res, tbl_unpack(r))
end

local function re_find(subject, regex, options, ctx, nth)
  subject = subject_arg(subject, "find")
  regex = regex_arg(regex, "find")
  local pos = 0
  if ctx then pos = (ctx.pos or 1) - 1 end
  local r = { re_exec(subject, regex, options or "", pos) }
  if r[1] == nil then return nil, nil, r[2] end
  if r[1] == false then return nil end
  nth = nth or 0
  if ctx then ctx.pos = r[4] + 1 end
  if nth > r[1] then return nil end
  local s, e = r[2 * nth + 3], r[2 * nth + 4]
  if s < 0 then return nil end
  return s + 1, e
end

local function re_gmatch(subject, regex, options)
  subject = subject_arg(subject, "gmatch")
  regex = regex_arg(regex, "gmatch")
  options = options or ""
  local first = { re_exec("", regex, options, 0) }
  if first[1] == nil then return nil, first[2] end
  local pos, len, done = 0, #subject, false
  return function()
    if done or pos > len then return nil end
    local r = { re_exec(subject, regex, options, pos) }
    if r[1] == nil then done = true; return nil, r[2] end
    if r[1] == false then done = true; return nil end
    local s, e = r[3], r[4]
    if e == s then pos = e + 1 else pos = e end
    return captures(subject, regex, options, nil, tbl_unpack(r))
  end
end

-- sub/gsub: string templates are expanded on the JS side; a function replacement runs here, match by match.
local function substitute(fname, subject, regex, replace, options, global)
  subject = subject_arg(subject, fname)
  regex = regex_arg(regex, fname)
  options = options or ""
  local tr = type(replace)
  if tr == "string" or tr == "number" then
    return re_sub(subject, regex, options, tostring(replace), global)
  end
  if tr ~= "function" then argerror(fname, 3, "string or function expected, got " .. tr) end
  local out, n, pos, last, len = {}, 0, 0, 0, #subject
  while pos <= len do
    local r = { re_exec(subject, regex, options, pos) }
    if r[1] == nil then return nil, nil, r[2] end
    if r[1] == false then break end
    local s, e = r[3], r[4]
    out[#out + 1] = str_sub(subject, last + 1, s)
    local rep = replace(captures(subject, regex, options, nil, tbl_unpack(r)))
    local trep = type(rep)
    if trep == "number" then rep = tostring(rep)
    elseif trep ~= "string" then error(str_format("%s: the replacement function returned a %s", fname, trep), 2) end
    out[#out + 1] = rep
    n = n + 1
    last = e
    if not global then break end
    if e == s then pos = e + 1 else pos = e end
  end
  out[#out + 1] = str_sub(subject, last + 1)
  return tbl_concat(out), n
end

local RE = {
  match = re_match,
  find = re_find,
  gmatch = re_gmatch,
  sub = function(s, re, rep, opts) return substitute("sub", s, re, rep, opts, false) end,
  gsub = function(s, re, rep, opts) return substitute("gsub", s, re, rep, opts, true) end,
}

-- ngx.shared -----------------------------------------------------------------------------------------------

local DICT_NAMES = setmetatable({}, { __mode = "k" })   -- dict object -> name
local SET, ADD, REPLACE = 0, 1, 2

local function dict_name(self)
  local name = type(self) == "table" and DICT_NAMES[self]
  if not name then error('bad "zone" argument (use dict:method(...), not dict.method(...))', 3) end
  return name
end

local function dict_key(key)
  local tk = type(key)
  if tk == "number" then key = tostring(key) elseif tk ~= "string" then return nil, "bad key type" end
  if key == "" then return nil, "empty key" end
  return key
end

local function dict_value(v)
  local tv = type(v)
  if tv ~= "string" and tv ~= "number" and tv ~= "boolean" and tv ~= "nil" then
    error("bad value type: " .. tv, 3)
  end
  return v
end

local function dict_store(mode)
  return function(self, key, value, exptime)
    local name = dict_name(self)
    local k, err = dict_key(key)
    if not k then return false, err, false end
    return HOST.shd_set(name, mode, k, dict_value(value), exptime or 0)
  end
end

local DICT_METHODS = {
  get = function(self, key)
    local name = dict_name(self)
    local k, err = dict_key(key)
    if not k then return nil, err end
    return HOST.shd_get(name, k)
  end,
  set = dict_store(SET),
  add = dict_store(ADD),
  replace = dict_store(REPLACE),
  delete = function(self, key)
    local name = dict_name(self)
    local k, err = dict_key(key)
    if not k then return false, err end
    return HOST.shd_set(name, SET, k, nil, 0)
  end,
  incr = function(self, key, value, init, init_ttl)
    local name = dict_name(self)
    local k, err = dict_key(key)
    if not k then return nil, err end
    if type(value) ~= "number" then argerror("incr", 2, "number expected, got " .. type(value)) end
    if init ~= nil and type(init) ~= "number" then argerror("incr", 3, "number expected, got " .. type(init)) end
    return HOST.shd_incr(name, k, value, init, init_ttl or 0)
  end,
  get_keys = function(self, max)
    return { HOST.shd_keys(dict_name(self), max or 1024) }
  end,
  flush_all = function(self)
    return HOST.shd_flush(dict_name(self))
  end,
}
local DICT_MT = { __index = DICT_METHODS, __newindex = deny, __metatable = false }

local SHARED = {}
for _, name in ipairs(INFO.dicts) do
  local dict = setmetatable({}, DICT_MT)
  DICT_NAMES[dict] = name
  READONLY[dict] = "ngx.shared." .. name
  SHARED[name] = dict
end

-- ngx --------------------------------------------------------------------------------------------------------

local function unsupported(prefix)
  return setmetatable({}, {
    __index = function(_, k)
      local name = prefix .. "." .. tostring(k)
      return function() error(name .. " is not supported by lua-compat", 2) end
    end,
    __newindex = deny,
    __metatable = false,
  })
end

local function flatten(v, out, fname)
  local tv = type(v)
  if tv == "string" then out[#out + 1] = v
  elseif tv == "number" then out[#out + 1] = tostring(v)
  elseif tv == "nil" then out[#out + 1] = "nil"
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif v == NULL then out[#out + 1] = "null"
  elseif tv == "table" then
    for i = 1, #v do flatten(v[i], out, fname) end
  else
    error(str_format("bad argument to '%s' (%s values are not allowed)", fname, tv), 4)
  end
end

local function output(fname, newline, ...)
  local out = {}
  for i = 1, select("#", ...) do flatten((select(i, ...)), out, fname) end
  if newline then out[#out + 1] = "\n" end
  host_say(tbl_concat(out))
  return 1
end

local function header_name(k)
  if type(k) ~= "string" then error("header name must be a string, got " .. type(k), 3) end
  -- ngx.header.content_type means Content-Type, as in OpenResty
  return (str_gsub(k, "_", "-"))
end

local function header_values(...)
  local n = select("#", ...)
  if n <= 1 then return (...) end
  return { ... }
end

local NGX_HEADER = setmetatable({}, {
  __index = function(_, k) return header_values(HOST.resp_header_get(header_name(k))) end,
  __newindex = function(_, k, v)
    local name = header_name(k)
    if type(v) == "table" then return HOST.resp_header_set(name, tbl_unpack(v)) end
    if v == nil then return HOST.resp_header_set(name) end
    return HOST.resp_header_set(name, v)
  end,
  __metatable = false,
})

local NGX_VAR = setmetatable({}, {
  __index = function(_, k)
    if type(k) == "string" then return var_get(k) end
  end,
  __newindex = function(_, k, v)
    if type(k) ~= "string" then error("variable name must be a string", 2) end
    return var_set(k, v)
  end,
  __metatable = false,
})

local HEADERS_MT = {
  -- lookups accept any case and "_" for "-", as in OpenResty
  __index = function(t, k)
    if type(k) == "string" then
      local nk = str_gsub(str_lower(k), "_", "-")
      if nk ~= k then return rawget(t, nk) end
    end
  end,
}

local REQ = {
  get_method = HOST.req_method,
  http_version = HOST.req_http_version,
  start_time = HOST.req_start_time,
  -- The proxy discards an unread body whenever the script answers, so there is nothing to do here.
  discard_body = function() end,
  get_body_data = HOST.req_body,
  get_headers = function(max, raw)
    max = max or 100
    local flat = { HOST.req_headers(raw and true or false) }
    local t, count = {}, 0
    for i = 1, #flat, 2 do
      if max > 0 and count >= max then
        if not raw then setmetatable(t, HEADERS_MT) end
        return t, "truncated"
      end
      local k, v = flat[i], flat[i + 1]
      local old = rawget(t, k)
      if old == nil then t[k] = v
      elseif type(old) == "table" then old[#old + 1] = v
      else t[k] = { old, v } end
      count = count + 1
    end
    if not raw then setmetatable(t, HEADERS_MT) end
    return t
  end,
  get_uri_args = function(max)
    return decode_args(var_get("args") or "", max)
  end,
  set_header = function(name, value)
    if type(name) ~= "string" then argerror("set_header", 1, "string expected, got " .. type(name)) end
    if type(value) == "table" then return HOST.req_set_header(name, tbl_unpack(value)) end
    if value == nil then return HOST.req_set_header(name) end
    return HOST.req_set_header(name, value)
  end,
  clear_header = function(name)
    if type(name) ~= "string" then argerror("clear_header", 1, "string expected, got " .. type(name)) end
    return HOST.req_set_header(name)
  end,
  set_uri = function(uri, jump)
    if type(uri) ~= "string" or uri == "" then argerror("set_uri", 1, "non-empty string expected") end
    -- jump is accepted and ignored: there is one location (scripts.md §6.2)
    return HOST.req_set_uri(uri)
  end,
  set_uri_args = function(args)
    local ta = type(args)
    if ta == "table" then args = encode_args(args)
    elseif ta == "number" then args = tostring(args)
    elseif ta ~= "string" then argerror("set_uri_args", 1, "string or table expected, got " .. ta) end
    return var_set("args", args)
  end,
  read_body = function()
    if not HOST.req_body_read() then suspend(K_READ_BODY) end
  end,
}

-- ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED, or an HTTP status
local EXIT_CODES = { [0] = true, [-1] = true, [-2] = true, [-4] = true, [-5] = true }

local function ngx_exit(status)
  local s = math_tointeger(status)
  if s == nil then argerror("exit", 1, "integer expected, got " .. type(status)) end
  if not EXIT_CODES[s] and (s < 200 or s > 999) then argerror("exit", 1, "bad status " .. s) end
  return suspend(K_EXIT, s)
end

local REDIRECT_STATUSES = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

local function ngx_redirect(uri, status)
  if type(uri) ~= "string" then argerror("redirect", 1, "string expected, got " .. type(uri)) end
  status = status or 302
  if not REDIRECT_STATUSES[status] then
    error("only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, " ..
      "ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed", 2)
  end
  -- CR and LF would split the Location header; OpenResty escapes them the same way
  uri = str_gsub(uri, "[\r\n]", { ["\r"] = "%0D", ["\n"] = "%0A" })
  return suspend(K_REDIRECT, uri, status)
end

local function ngx_sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 then argerror("sleep", 1, "non-negative number expected") end
  return suspend(K_SLEEP, seconds)
end

local function whole_seconds(t, fname)
  if type(t) ~= "number" then argerror(fname, 1, "number expected, got " .. type(t)) end
  return math_floor(t)
end

local NGX = {
  OK = 0, ERROR = -1, AGAIN = -2, DONE = -4, DECLINED = -5,
  STDERR = 0, EMERG = 1, ALERT = 2, CRIT = 3, ERR = 4, WARN = 5, NOTICE = 6, INFO = 7, DEBUG = 8,
  HTTP_CONTINUE = 100, HTTP_SWITCHING_PROTOCOLS = 101,
  HTTP_OK = 200, HTTP_CREATED = 201, HTTP_ACCEPTED = 202, HTTP_NO_CONTENT = 204, HTTP_PARTIAL_CONTENT = 206,
  HTTP_SPECIAL_RESPONSE = 300, HTTP_MOVED_PERMANENTLY = 301, HTTP_MOVED_TEMPORARILY = 302, HTTP_SEE_OTHER = 303,
  HTTP_NOT_MODIFIED = 304, HTTP_TEMPORARY_REDIRECT = 307, HTTP_PERMANENT_REDIRECT = 308,
  HTTP_BAD_REQUEST = 400, HTTP_UNAUTHORIZED = 401, HTTP_PAYMENT_REQUIRED = 402, HTTP_FORBIDDEN = 403,
  HTTP_NOT_FOUND = 404, HTTP_NOT_ALLOWED = 405, HTTP_NOT_ACCEPTABLE = 406, HTTP_REQUEST_TIMEOUT = 408,
  HTTP_CONFLICT = 409, HTTP_GONE = 410, HTTP_UPGRADE_REQUIRED = 426, HTTP_TOO_MANY_REQUESTS = 429,
  HTTP_CLOSE = 444, HTTP_ILLEGAL = 451, HTTP_INTERNAL_SERVER_ERROR = 500, HTTP_METHOD_NOT_IMPLEMENTED = 501,
  HTTP_BAD_GATEWAY = 502, HTTP_SERVICE_UNAVAILABLE = 503, HTTP_GATEWAY_TIMEOUT = 504,
  HTTP_VERSION_NOT_SUPPORTED = 505, HTTP_INSUFFICIENT_STORAGE = 507,
  HTTP_GET = 2, HTTP_HEAD = 4, HTTP_POST = 8, HTTP_PUT = 16, HTTP_DELETE = 32, HTTP_MKCOL = 64, HTTP_COPY = 128,
  HTTP_MOVE = 256, HTTP_OPTIONS = 512, HTTP_PROPFIND = 1024, HTTP_PROPPATCH = 2048, HTTP_LOCK = 4096,
  HTTP_UNLOCK = 8192, HTTP_PATCH = 16384, HTTP_TRACE = 32768,
  null = NULL,
  headers_sent = false,
  is_subrequest = false,
  var = NGX_VAR,
  header = NGX_HEADER,
  req = readonly("ngx.req", REQ),
  re = readonly("ngx.re", RE),
  shared = readonly("ngx.shared", SHARED),
  worker = readonly("ngx.worker", {
    id = function() return INFO.worker_id end,
    count = function() return INFO.worker_count end,
    pid = function() return INFO.pid end,
    exiting = function() return false end,
  }),
  config = readonly("ngx.config", { subsystem = "http", debug = false }),
  location = unsupported("ngx.location"),
  socket = unsupported("ngx.socket"),
  timer = unsupported("ngx.timer"),
  thread = unsupported("ngx.thread"),
  log = ngx_log,
  say = function(...) return output("say", true, ...) end,
  print = function(...) return output("print", false, ...) end,
  flush = function() return 1 end,
  exit = ngx_exit,
  redirect = ngx_redirect,
  sleep = ngx_sleep,
  get_phase = function() return "rewrite" end,
  time = function() return HOST.now_ms() // 1000 end,
  now = function() return HOST.now_ms() / 1000 end,
  update_time = function() end,
  today = function() return os_date("%Y-%m-%d", HOST.now_ms() // 1000) end,
  localtime = function() return os_date("%Y-%m-%d %H:%M:%S", HOST.now_ms() // 1000) end,
  utctime = function() return os_date("!%Y-%m-%d %H:%M:%S", HOST.now_ms() // 1000) end,
  http_time = function(t) return os_date("!%a, %d %b %Y %H:%M:%S GMT", whole_seconds(t, "http_time")) end,
  cookie_time = function(t) return os_date("!%a, %d-%b-%y %H:%M:%S GMT", whole_seconds(t, "cookie_time")) end,
  md5 = function(s) return HOST.md5(to_str(s, "md5")) end,
  md5_bin = function(s) return HOST.md5_bin(to_str(s, "md5_bin")) end,
  sha1_bin = function(s) return HOST.sha1_bin(to_str(s, "sha1_bin")) end,
  hmac_sha1 = function(key, s) return HOST.hmac_sha1(to_str(key, "hmac_sha1"), to_str(s, "hmac_sha1")) end,
  crc32_short = function(s) return HOST.crc32(to_str(s, "crc32_short")) end,
  crc32_long = function(s) return HOST.crc32(to_str(s, "crc32_long")) end,
  encode_base64 = function(s, no_padding) return HOST.b64_encode(to_str(s, "encode_base64"), no_padding and true or false) end,
  decode_base64 = function(s)
    if type(s) ~= "string" then argerror("decode_base64", 1, "string expected, got " .. type(s)) end
    return HOST.b64_decode(s)
  end,
  escape_uri = escape_uri,
  unescape_uri = unescape_uri,
  encode_args = encode_args,
  decode_args = decode_args,
}

setmetatable(NGX, {
  __index = function(_, k)
    if k == "status" then return HOST.status_get()
    elseif k == "ctx" then
      local req = CUR
      if req == nil then error("ngx.ctx is only available while a request runs", 2) end
      local ctx = req.ctx
      if ctx == nil then ctx = {}; req.ctx = ctx end
      return ctx
    elseif k == "balancer" or k == "ssl" then
      error("ngx." .. k .. " is not supported by lua-compat", 2)
    end
  end,
})

local ngx = readonly("ngx", NGX, function(_, k, v)
  if k == "status" then
    return HOST.status_set(v)
  elseif k == "ctx" then
    if type(v) ~= "table" then error("ngx.ctx must be a table", 2) end
    if CUR == nil then error("ngx.ctx is only available while a request runs", 2) end
    CUR.ctx = v
  else
    error(str_format("attempt to modify read-only table 'ngx' (field '%s')", tostring(k)), 2)
  end
end)

-- errno (Slardar's table, scripts.md §7) ----------------------------------------------------------------------

local function httpcode_of(code)
  if code < 1000 then return code end
  return tonumber(str_sub(tostring(code), 1, 3))
end

local ERRNO_MT = {
  __eq = function(a, b) return rawget(a, "code") == rawget(b, "code") end,
  __tostring = function(e) return tostring(rawget(e, "code")) end,
  -- Slardar's entries were {code, msg} arrays; keep e[1] and e[2] working
  __index = function(e, k)
    if k == 1 then return rawget(e, "code") elseif k == 2 then return rawget(e, "msg") end
  end,
}

local ERRNO = {}
local ERRNO_BY_CODE = {}
for _, def in ipairs({
  { "OK", 0, "ok" },
  { "HTTP_OK", 200, "ok" },
  { "HTTP_NOT_MODIFIED", 304, "not modified" },
  { "HTTP_BAD_REQUEST", 400, "bad request" },
  { "HTTP_UNAUTHORIZED", 401, "unauthorized" },
  { "HTTP_FORBIDDEN", 403, "forbidden" },
  { "HTTP_NOT_FOUND", 404, "not found" },
  { "HTTP_NOT_ALLOWED", 405, "method not allowed" },
  { "HTTP_PRECONDITION", 412, "precondition failed" },
  { "HTTP_MEDIA_TYPE_ERR", 415, "media type error" },
  { "HTTP_TOO_MANY_REQS", 429, "to many requests" },
  { "HTTP_SERVICE_UNAVAILABLE", 503, "service unavailable" },
  { "EXIT_TRY_CODE", 40099999, "exit try code" },
  { "UNKNOWN_ERR", 50300000, "unknown error" },
}) do
  local entry = setmetatable({ code = def[2], msg = def[3], httpcode = httpcode_of(def[2]) }, ERRNO_MT)
  ERRNO[def[1]] = entry
  ERRNO_BY_CODE[def[2]] = entry
end
local UNKNOWN_ERR = ERRNO.UNKNOWN_ERR

function ERRNO.from_code(c)
  c = tonumber(c)
  return (c and ERRNO_BY_CODE[c]) or UNKNOWN_ERR
end

setmetatable(ERRNO, {
  __index = function(_, k)
    host_log(LOG_ERR, "unknown err: " .. tostring(k))
    return UNKNOWN_ERR
  end,
})

local errno = readonly("errno", ERRNO)

-- slardar.exit(err): an errno entry, a table with a numeric code (Slardar read err.code/msg/httpcode), or a
-- number looked up with from_code; anything else is UNKNOWN_ERR (fix: Slardar raised a Lua error, scripts.md §7).
local function slardar_exit(err)
  local code, msg, httpcode
  local own_code = type(err) == "table" and math_tointeger(rawget(err, "code"))
  if own_code then
    code = own_code
    msg = tostring(rawget(err, "msg") or "")
    httpcode = math_tointeger(rawget(err, "httpcode")) or httpcode_of(code)
  else
    local e = (type(err) == "number" and ERRNO.from_code(err)) or UNKNOWN_ERR
    code, msg, httpcode = e.code, e.msg, e.httpcode
  end
  return suspend(K_ERRNO_EXIT, code, msg, httpcode)
end

-- utils (Slardar's modules/utils, scripts.md §8) -------------------------------------------------------------

local utils = readonly("utils", {
  str_split = function(s, sep)
    local t = {}
    for part in str_gmatch(s, "[^" .. (sep or "%s") .. "]+") do t[#t + 1] = part end
    return t
  end,
  str_join = function(t, sep) return tbl_concat(t, sep) end,
  -- Slardar raised an error for a path without "/"; here it is "", path (scripts.md §8)
  basename = function(path)
    local dir, file = str_match(path, "^(.*/)(.*)$")
    if dir == nil then return "", path end
    if file == "" then return dir end
    return dir, file
  end,
  filename = function(name)
    if not str_find(name, ".", 1, true) then return name end
    if str_byte(name, -1) == 46 then return str_sub(name, 1, -2) end
    return str_match(name, "^(.*)%.(.+)$")
  end,
  null = function(v) return v == nil or v == NULL end,
  -- order(t, a, b) as in Slardar: the comparator also receives the table
  sorted_pairs = function(t, order)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    if order then tbl_sort(keys, function(a, b) return order(t, a, b) end) else tbl_sort(keys) end
    local i = 0
    return function()
      i = i + 1
      local k = keys[i]
      if k ~= nil then return k, t[k] end
    end
  end,
})

-- slardar: built-in fields first, then dynamic config (works in scripts and modules alike; fix for Slardar's
-- sandbox hiding slardar.<key>, scripts.md §8)
local SLARDAR = {
  exit = slardar_exit,
  global = readonly("slardar.global", { version = INFO.version }),
}
setmetatable(SLARDAR, {
  __index = function(_, k)
    if type(k) == "string" then return HOST.config_get(k) end
  end,
})
local slardar = readonly("slardar", SLARDAR)

-- Sandbox ------------------------------------------------------------------------------------------------------

local SANDBOX = {}
local ENV_MT = { __index = SANDBOX, __metatable = false }

local function new_env()
  local env = setmetatable({}, ENV_MT)
  env._G = env
  return env
end

-- The environment of the function at stack level "level" (counted from the caller of this function): the
-- _ENV local of a request script's main chunk, or the _ENV upvalue of any other function.
local REAL_G = _G

local function caller_env(level)
  level = level + 1
  local info = d_getinfo(level, "f")
  local env
  if info ~= nil then
    for i = 1, 255 do
      local name, value = d_getlocal(level, i)
      if name == nil then break end
      if name == "_ENV" then env = value end
    end
    if env == nil then
      for i = 1, 255 do
        local name, value = d_getupvalue(info.func, i)
        if name == nil then break end
        if name == "_ENV" then env = value; break end
      end
    end
  end
  -- Never hand out the unrestricted globals (reachable through a tail call into the prelude's own frames).
  if env == nil or env == REAL_G then return SANDBOX end
  return env
end

local function sb_load(chunk, chunkname, mode, env)
  if env == nil then env = caller_env(2) end
  -- text only: a crafted binary chunk can corrupt the VM
  return load(chunk, chunkname, "t", env)
end

local function sb_loadstring(s, chunkname)
  if type(s) ~= "string" then argerror("loadstring", 1, "string expected, got " .. type(s)) end
  return load(s, chunkname, "t", caller_env(2))
end

local function sb_rawset(t, k, v)
  if READONLY[t] then deny(t, k) end
  return rawset(t, k, v)
end

local function sb_setmetatable(t, mt)
  -- __gc would run a script's code at arbitrary times inside other requests
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not supported by lua-compat", 2)
  end
  return setmetatable(t, mt)
end

local function sb_collectgarbage(opt, ...)
  if opt ~= "count" then error('collectgarbage: only "count" is supported by lua-compat', 2) end
  return collectgarbage("count")
end

local function maxn(t)
  local max = 0
  for k in pairs(t) do
    if type(k) == "number" and k > max then max = k end
  end
  return max
end

local sb_table = readonly("table", (function()
  local t = copy(table)
  t.maxn = maxn
  return t
end)())
local sb_math = readonly("math", (function()
  local m = copy(math)
  m.pow = function(x, y) return x ^ y end
  return m
end)())
local sb_string = readonly("string", copy(string, { dump = true }))
local sb_os = readonly("os", { time = os.time, date = os.date, clock = os.clock, difftime = os.difftime })
local sb_coroutine = readonly("coroutine", {
  create = co_create, resume = sb_resume, yield = sb_yield, status = co_status, running = co_running,
  isyieldable = co_isyieldable, wrap = sb_wrap, close = co_close,
})
local sb_utf8 = readonly("utf8", copy(utf8))

-- Modules (lua/<name>): loaded on first require, once per version, each in its own persistent environment.
local BUILTIN = {
  cjson = cjson, ["cjson.safe"] = cjson_safe, bit = bit, ["table.new"] = table_new, ["table.clear"] = table_clear,
  string = sb_string, table = sb_table, math = sb_math, os = sb_os, coroutine = sb_coroutine, utf8 = sb_utf8,
}
local LOADED = {}       -- module name -> value its chunk returned
local LOADING = {}      -- module name -> true while its top-level code runs
local LOAD_STACK = {}   -- modules whose top-level code is running, innermost last

local function is_unsupported_module(name)
  return name == "ffi" or name == "jit" or str_find(name, "^resty%.") ~= nil or str_find(name, "^ngx%.") ~= nil
end

local function instantiate(name, source)
  local fn, err = load(source, "=" .. name, "t", new_env())
  if not fn then error(err, 0) end
  LOADING[name] = true
  LOAD_STACK[#LOAD_STACK + 1] = name
  -- Through a C boundary: top-level code cannot suspend, so a module is never half-loaded while other requests run.
  local ok, value = pcall(call_noyield, fn, name)
  LOAD_STACK[#LOAD_STACK] = nil
  LOADING[name] = nil
  if not ok then error(value, 0) end
  if not value then
    error(str_format("module '%s' returned %s; a module must return a true value (usually its table)",
      name, tostring(value)), 0)
  end
  return value
end

local function sb_require(name)
  if type(name) ~= "string" then argerror("require", 1, "string expected, got " .. type(name)) end
  local v = BUILTIN[name]
  if v ~= nil then return v end
  local parent = LOAD_STACK[#LOAD_STACK]
  v = LOADED[name]
  if v ~= nil then
    if parent then HOST.module_dep(parent, name) end
    return v
  end
  if is_unsupported_module(name) then error(name .. " is not supported by lua-compat", 2) end
  if LOADING[name] then error(str_format("loop or previous error loading module '%s'", name), 2) end
  local source, err = HOST.module_source(name, parent)
  if not source then error(err, 2) end
  local ok, value = pcall(instantiate, name, source)
  HOST.module_loaded(name, ok, not ok and tostring(value) or nil)
  if not ok then error(value, 0) end
  LOADED[name] = value
  return value
end

local sb_package = readonly("package", {
  loaded = setmetatable({}, {
    __index = function(_, k) return BUILTIN[k] or LOADED[k] end,
    __newindex = deny,
    __pairs = function() return next, LOADED, nil end,
    __metatable = false,
  }),
})

for _, name in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
  "select", "tonumber", "tostring", "type", "xpcall", "getmetatable", "_VERSION" }) do
  SANDBOX[name] = _G[name]
end
SANDBOX.setmetatable = sb_setmetatable
SANDBOX.rawset = sb_rawset
SANDBOX.print = sb_print
SANDBOX.load = sb_load
SANDBOX.loadstring = sb_loadstring
SANDBOX.require = sb_require
SANDBOX.collectgarbage = sb_collectgarbage
SANDBOX.unpack = tbl_unpack
SANDBOX.string = sb_string
SANDBOX.table = sb_table
SANDBOX.math = sb_math
SANDBOX.os = sb_os
SANDBOX.coroutine = sb_coroutine
SANDBOX.utf8 = sb_utf8
SANDBOX.package = sb_package
SANDBOX.ngx = ngx
SANDBOX.errno = errno
SANDBOX.utils = utils
SANDBOX.slardar = slardar

-- ("x"):rep(...) reaches the real string table through the string metatable: keep dump out of it, and keep the
-- metatable itself (whose __index is that table) away from scripts.
string.dump = nil
getmetatable("").__metatable = false

-- Entry points (runtime.ts) ------------------------------------------------------------------------------------

-- One request: a fresh environment falling back to the sandbox; the chunk takes it as its first argument
-- (compile() prefixes "local _ENV = ...;"), so concurrent suspended requests never share globals.
local function run_request(chunk)
  CUR = { co = co_running() }
  return chunk(new_env())
end

-- Re-runs a loaded module at once (dependent reload, scripts.md §3); errors propagate to the caller, which keeps
-- the previous instance.
local function reload_module(name, source)
  local saved = CUR
  CUR = nil
  local ok, value = pcall(instantiate, name, source)
  CUR = saved
  if not ok then error(value, 0) end
  LOADED[name] = value
end

local function unload_module(name)
  LOADED[name] = nil
end

return run_request, reload_module, unload_module, SANDBOX
`

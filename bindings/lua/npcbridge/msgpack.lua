--- Pure-Lua msgpack codec for npcbridge (Lua 5.1, 5.2, 5.3, 5.4, LuaJIT, LÖVE).
---
--- Arithmetic only: no `bit` library, no `goto`, no `string.pack`; the few things that differ
--- between Lua versions are feature-detected (`math.type`, `math.frexp`, the `//` operator).
---
--- Encoding is canonical (the same bytes as the Python server and `tests/vectors/`): map keys sorted
--- by their bytes, the smallest int/str/bin/array/map form, floats always float64.
---
--- Lua values and msgpack types:
---   nil, msgpack.null         <-> nil      (inside arrays and maps nil decodes to `msgpack.null`)
---   boolean                   <-> bool
---   integer                   <-> int      (Lua 5.3+: `math.type(x) == "integer"`; exact 64-bit.
---                                           uint64 values above math.maxinteger decode to a boxed
---                                           `msgpack.uint64` so they re-encode exactly.)
---   float                     <-> float64  (float32 is read, never written)
---   Lua 5.1 / LuaJIT numbers: an integral number in the int64/uint64 range encodes as an integer,
---       anything else as float64. Integers beyond 2^53 decode to the nearest double (not exact).
---   string                    <-> str      (valid UTF-8 both ways: `encode` refuses a string that
---                                           is not, `decode` a str that is not; bytes go in a bin)
---   msgpack.bin(s)            <-> bin      (a table {data = s} with the BIN metatable)
---   table marked as array     <-> array    (decoded arrays carry `msgpack.ARRAY`)
---   table marked as map       <-> map      (decoded maps carry `msgpack.MAP`)
---   unmarked table: a non-empty sequence 1..n is an array; anything else (including `{}`) a map.
---   Use `msgpack.array({})` for an empty array.
---
--- Errors are values: `decode` returns `nil, message` on truncated or invalid bytes and never
--- raises; `encode` returns `nil, message` for values msgpack cannot hold.
---@class npcbridge.msgpack
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local utf8scan = require(base .. "utf8scan")

local byte, char, sub, concat = string.byte, string.char, string.sub, table.concat
local floor, huge = math.floor, math.huge
local type, pairs, ipairs, setmetatable, getmetatable, tostring = type, pairs, ipairs, setmetatable,
    getmetatable, tostring
local pcall, error, sort = pcall, error, table.sort

--- Metatable carried by decoded arrays (and by tables passed through `msgpack.array`).
M.ARRAY = { __name = "msgpack.array" }
--- Metatable carried by decoded maps (and by tables passed through `msgpack.map`).
M.MAP = { __name = "msgpack.map" }
--- Metatable of bin values: `{data = <string>}`.
M.BIN = { __name = "msgpack.bin", __tostring = function(b) return "msgpack.bin(" .. #b.data .. " bytes)" end }
--- Metatable of boxed uint64 values above math.maxinteger (Lua 5.3+ only).
M.UINT64 = { __name = "msgpack.uint64" }

--- The nil that can live inside a table.
M.null = setmetatable({}, { __name = "msgpack.null", __tostring = function() return "msgpack.null" end })

--- Largest nesting of arrays/maps `decode` accepts (deeper input is an error, not a stack overflow).
M.MAX_DEPTH = 100

---@generic T
---@param t T|nil
---@return T
function M.array(t) return setmetatable(t or {}, M.ARRAY) end

---@generic T
---@param t T|nil
---@return T
function M.map(t) return setmetatable(t or {}, M.MAP) end

---@param s string
---@return table bin a value that encodes as msgpack bin
function M.bin(s) return setmetatable({ data = s }, M.BIN) end

---@param v any
---@return boolean
function M.is_bin(v) return type(v) == "table" and getmetatable(v) == M.BIN end
---@param v any
---@return boolean
function M.is_array(v) return type(v) == "table" and getmetatable(v) == M.ARRAY end
---@param v any
---@return boolean
function M.is_map(v) return type(v) == "table" and getmetatable(v) == M.MAP end

-- ---------------------------------------------------------------------------------------------
-- Feature detection
-- ---------------------------------------------------------------------------------------------

local math_type = math.type -- nil on Lua 5.1 / LuaJIT
M.has_integers = math_type ~= nil and math_type(1) == "integer"

-- Integer floor division that stays an integer on Lua 5.3+ (`//` is a syntax error in 5.1, so the
-- operator is compiled only where the running Lua accepts it).
local idiv
do
  local loader = loadstring or load
  local chunk = loader("return function(a, b) return a // b end")
  if chunk and M.has_integers then
    idiv = chunk()
  else
    idiv = function(a, b) return floor(a / b) end
  end
end

local frexp = math.frexp
if not frexp then
  local log, LOG2 = math.log, math.log(2)
  frexp = function(x)
    if x == 0 or x ~= x or x == huge or x == -huge then return x, 0 end
    local ax = x < 0 and -x or x
    local e = floor(log(ax) / LOG2) + 1
    local half = floor(e / 2)
    local m = ax / 2 ^ half / 2 ^ (e - half)
    while m >= 1 do m = m / 2; e = e + 1 end
    while m < 0.5 do m = m * 2; e = e - 1 end
    if x < 0 then m = -m end
    return m, e
  end
end

local ldexp = math.ldexp or function(m, e)
  local half = floor(e / 2)
  return m * 2 ^ half * 2 ^ (e - half)
end

-- On Lua 5.3+: is this integer in [0, 2^63)? (`v >= 0` suffices, integers wrap.)
local MAXINT = math.maxinteger

--- Return true when `s` is well-formed UTF-8 (the check `decode` applies to every str, and
--- `encode` to every Lua string).
---@param s string
---@return boolean
M.valid_utf8 = utf8scan.valid

-- ---------------------------------------------------------------------------------------------
-- Encoder
-- ---------------------------------------------------------------------------------------------

-- Big-endian bytes of a non-negative integral number below 2^(8*n) (or of any integer on 5.3+,
-- two's complement, when it is negative).
local tunpack = unpack or table.unpack
local function be_bytes(v, n)
  local t = {}
  for i = n, 1, -1 do
    t[i] = v % 256
    v = idiv(v, 256)
  end
  return char(tunpack(t, 1, n))
end

local function encode_float(x)
  local sign = 0
  if x < 0 or (x == 0 and 1 / x < 0) then
    sign = 0x80
    x = -x
  end
  local e, mant
  if x ~= x then -- NaN
    return "\203\127\248\0\0\0\0\0\0"
  elseif x == huge then
    e, mant = 0x7FF, 0
  elseif x == 0 then
    e, mant = 0, 0
  else
    local m, ex = frexp(x) -- x = m * 2^ex, 0.5 <= m < 1
    e = ex + 1022
    if e <= 0 then -- subnormal
      mant = ldexp(m, ex + 1074)
      e = 0
    else
      mant = (m * 2 - 1) * 4503599627370496 -- 2^52
    end
  end
  mant = floor(mant + 0) -- exact already; makes it an integer on 5.3+
  local hi = floor(mant / 4294967296)
  local lo = mant - hi * 4294967296
  local b1 = sign + floor(e / 16)
  local b2 = (e % 16) * 16 + floor(hi / 65536)
  return "\203" .. char(b1, b2, floor(hi / 256) % 256, hi % 256) .. be_bytes(lo, 4)
end

local function encode_int(x)
  if x >= 0 then
    if x < 128 then return char(x) end
    if x < 256 then return "\204" .. char(x) end
    if x < 65536 then return "\205" .. be_bytes(x, 2) end
    if x < 4294967296 then return "\206" .. be_bytes(x, 4) end
    return "\207" .. be_bytes(x, 8)
  end
  if x >= -32 then return char(x + 256) end
  if x >= -128 then return "\208" .. char(x + 256) end
  if x >= -32768 then return "\209" .. be_bytes(x + 65536, 2) end
  if x >= -2147483648 then return "\210" .. be_bytes(x + 4294967296, 4) end
  if M.has_integers and math_type(x) == "integer" then return "\211" .. be_bytes(x, 8) end
  -- A double in [-2^63, -2^31): two's complement as two 32-bit halves. `x + 2^64` would round
  -- (it needs 64 significant bits); the halves are exact: dividing by 2^32 and flooring are,
  -- and `lo` is an integer below 2^32, so `x - hi * 2^32` is computed without rounding.
  local hi = floor(x / 4294967296) -- in [-2^31, 0)
  local lo = x - hi * 4294967296 -- in [0, 2^32)
  return "\211" .. be_bytes(hi + 4294967296, 4) .. be_bytes(lo, 4)
end

local function encode_number(x)
  if math_type then
    if math_type(x) == "integer" then return encode_int(x) end
    return encode_float(x)
  end
  -- Lua 5.1 / LuaJIT: integral numbers that fit int64/uint64 encode as integers.
  if x == floor(x) and x >= -9223372036854775808 and x < 18446744073709551616 then
    return encode_int(x)
  end
  return encode_float(x)
end

local function len_header(n, fix, fixmax, c8, c16, c32)
  if fix and n <= fixmax then return char(fix + n) end
  if c8 and n < 256 then return char(c8, n) end
  if n < 65536 then return char(c16) .. be_bytes(n, 2) end
  return char(c32) .. be_bytes(n, 4)
end

local encode_value

local function key_bytes(k)
  if type(k) == "string" then return k end
  return tostring(k)
end

-- byte-wise string comparison (independent of the C locale, unlike `<` on strings)
local function bytes_less(a, b)
  local la, lb = #a, #b
  local n = la < lb and la or lb
  for i = 1, n do
    local x, y = byte(a, i), byte(b, i)
    if x ~= y then return x < y end
  end
  return la < lb
end

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then return false end
    count = count + 1
  end
  return count == n
end

local function encode_array(t, out, depth)
  local n = #t
  out[#out + 1] = len_header(n, 0x90, 15, nil, 0xDC, 0xDD)
  for i = 1, n do encode_value(t[i], out, depth) end
end

local function encode_map(t, out, depth)
  local keys, kb = {}, {}
  for k in pairs(t) do
    keys[#keys + 1] = k
    kb[k] = key_bytes(k)
  end
  sort(keys, function(a, b) return bytes_less(kb[a], kb[b]) end)
  out[#out + 1] = len_header(#keys, 0x80, 15, nil, 0xDE, 0xDF)
  for i = 1, #keys do
    local k = keys[i]
    encode_value(k, out, depth)
    encode_value(t[k], out, depth)
  end
end

encode_value = function(v, out, depth)
  local tv = type(v)
  if v == nil or v == M.null then
    out[#out + 1] = "\192"
  elseif tv == "boolean" then
    out[#out + 1] = v and "\195" or "\194"
  elseif tv == "number" then
    out[#out + 1] = encode_number(v)
  elseif tv == "string" then
    -- a str must be UTF-8 (the server rejects the whole message otherwise): bytes go in a bin
    if not utf8scan.valid(v) then error({ msgpack = "a string is not valid UTF-8 (wrap bytes in msgpack.bin)" }) end
    out[#out + 1] = len_header(#v, 0xA0, 31, 0xD9, 0xDA, 0xDB)
    out[#out + 1] = v
  elseif tv == "table" then
    if depth > M.MAX_DEPTH then error({ msgpack = "nested deeper than " .. M.MAX_DEPTH .. " levels" }) end
    local mt = getmetatable(v)
    if mt == M.BIN then
      out[#out + 1] = len_header(#v.data, nil, 0, 0xC4, 0xC5, 0xC6)
      out[#out + 1] = v.data
    elseif mt == M.UINT64 then
      out[#out + 1] = "\207" .. be_bytes(v.value, 8)
    elseif mt == M.ARRAY then
      encode_array(v, out, depth + 1)
    elseif mt == M.MAP then
      encode_map(v, out, depth + 1)
    elseif is_sequence(v) then
      encode_array(v, out, depth + 1)
    else
      encode_map(v, out, depth + 1)
    end
  else
    error({ msgpack = "cannot encode a " .. tv })
  end
end

--- Encode a Lua value as canonical msgpack.
---@param value any
---@return string|nil bytes
---@return string|nil err
function M.encode(value)
  local out = {}
  local ok, err = pcall(encode_value, value, out, 0)
  if not ok then
    if type(err) == "table" and err.msgpack then return nil, "msgpack encode: " .. err.msgpack end
    return nil, "msgpack encode: " .. tostring(err)
  end
  return concat(out)
end

-- ---------------------------------------------------------------------------------------------
-- Decoder
-- ---------------------------------------------------------------------------------------------

local function fail(msg) error({ msgpack = msg }, 0) end

local decode_value

-- unsigned big-endian integer of n bytes at pos
local function read_uint(s, pos, n)
  if pos + n - 1 > #s then fail("truncated input") end
  local v = 0
  for i = pos, pos + n - 1 do v = v * 256 + byte(s, i) end
  return v
end

local function read_signed(s, pos, n)
  local v = read_uint(s, pos, n)
  if n == 1 then return v >= 128 and v - 256 or v end
  if n == 2 then return v >= 32768 and v - 65536 or v end
  if n == 4 then return v >= 2147483648 and v - 4294967296 or v end
  return v
end

local function read_uint64(s, pos)
  if pos + 7 > #s then fail("truncated input") end
  if M.has_integers then
    local v = 0
    for i = pos, pos + 7 do v = v * 256 + byte(s, i) end -- wraps: two's complement bits
    if v < 0 then return setmetatable({ value = v }, M.UINT64) end
    return v
  end
  local hi, lo = read_uint(s, pos, 4), read_uint(s, pos + 4, 4)
  return hi * 4294967296 + lo
end

local function read_int64(s, pos)
  if pos + 7 > #s then fail("truncated input") end
  if M.has_integers then
    local v = 0
    for i = pos, pos + 7 do v = v * 256 + byte(s, i) end
    return v
  end
  local hi, lo = read_uint(s, pos, 4), read_uint(s, pos + 4, 4)
  if hi >= 2147483648 then hi = hi - 4294967296 end
  return hi * 4294967296 + lo
end

local function read_float64(s, pos)
  if pos + 7 > #s then fail("truncated input") end
  local b1, b2, b3, b4, b5, b6, b7, b8 = byte(s, pos, pos + 7)
  local sign = b1 >= 128 and -1 or 1
  local e = (b1 % 128) * 16 + floor(b2 / 16)
  local mant = ((((((b2 % 16) * 256 + b3) * 256 + b4) * 256 + b5) * 256 + b6) * 256 + b7) * 256 + b8
  if e == 0x7FF then
    if mant == 0 then return sign * huge end
    return 0 / 0
  elseif e == 0 then
    return sign * ldexp(mant + 0.0, -1074)
  end
  return sign * ldexp(1 + mant / 4503599627370496, e - 1023)
end

local function read_float32(s, pos)
  if pos + 3 > #s then fail("truncated input") end
  local b1, b2, b3, b4 = byte(s, pos, pos + 3)
  local sign = b1 >= 128 and -1 or 1
  local e = (b1 % 128) * 2 + floor(b2 / 128)
  local mant = ((b2 % 128) * 256 + b3) * 256 + b4
  if e == 0xFF then
    if mant == 0 then return sign * huge end
    return 0 / 0
  elseif e == 0 then
    return sign * ldexp(mant + 0.0, -149)
  end
  return sign * ldexp(1 + mant / 8388608, e - 127)
end

local function read_str(s, pos, n)
  if n > #s - pos + 1 then fail("truncated input") end
  local v = sub(s, pos, pos + n - 1)
  if not M.valid_utf8(v) then fail("invalid UTF-8 in a string") end
  return v, pos + n
end

local function read_bin(s, pos, n)
  if n > #s - pos + 1 then fail("truncated input") end
  return M.bin(sub(s, pos, pos + n - 1)), pos + n
end

local function read_array(s, pos, n, depth)
  -- every element takes at least one byte: reject impossible counts before allocating
  if n > #s - pos + 1 then fail("truncated input") end
  local t = {}
  local v
  for i = 1, n do
    v, pos = decode_value(s, pos, depth)
    if v == nil then v = M.null end
    t[i] = v
  end
  return setmetatable(t, M.ARRAY), pos
end

local function read_map(s, pos, n, depth)
  if 2 * n > #s - pos + 1 then fail("truncated input") end
  local t = {}
  local k, v
  for _ = 1, n do
    k, pos = decode_value(s, pos, depth)
    if k == nil or k == M.null then fail("nil map key") end
    if type(k) == "number" and k ~= k then fail("NaN map key") end
    v, pos = decode_value(s, pos, depth)
    if v == nil then v = M.null end
    t[k] = v
  end
  return setmetatable(t, M.MAP), pos
end

decode_value = function(s, pos, depth)
  local c = byte(s, pos)
  if not c then fail("truncated input") end
  pos = pos + 1
  if c < 0x80 then return c, pos end
  if c >= 0xE0 then return c - 256, pos end
  if c >= 0xA0 and c <= 0xBF then return read_str(s, pos, c - 0xA0) end
  if c >= 0x90 and c <= 0x9F then
    if depth >= M.MAX_DEPTH then fail("nested deeper than " .. M.MAX_DEPTH .. " levels") end
    return read_array(s, pos, c - 0x90, depth + 1)
  end
  if c >= 0x80 and c <= 0x8F then
    if depth >= M.MAX_DEPTH then fail("nested deeper than " .. M.MAX_DEPTH .. " levels") end
    return read_map(s, pos, c - 0x80, depth + 1)
  end
  if c == 0xC0 then return nil, pos end
  if c == 0xC2 then return false, pos end
  if c == 0xC3 then return true, pos end
  if c == 0xCC then return read_uint(s, pos, 1), pos + 1 end
  if c == 0xCD then return read_uint(s, pos, 2), pos + 2 end
  if c == 0xCE then return read_uint(s, pos, 4), pos + 4 end
  if c == 0xCF then return read_uint64(s, pos), pos + 8 end
  if c == 0xD0 then return read_signed(s, pos, 1), pos + 1 end
  if c == 0xD1 then return read_signed(s, pos, 2), pos + 2 end
  if c == 0xD2 then return read_signed(s, pos, 4), pos + 4 end
  if c == 0xD3 then return read_int64(s, pos), pos + 8 end
  if c == 0xCA then return read_float32(s, pos), pos + 4 end
  if c == 0xCB then return read_float64(s, pos), pos + 8 end
  if c == 0xD9 then return read_str(s, pos + 1, read_uint(s, pos, 1)) end
  if c == 0xDA then return read_str(s, pos + 2, read_uint(s, pos, 2)) end
  if c == 0xDB then return read_str(s, pos + 4, read_uint(s, pos, 4)) end
  if c == 0xC4 then return read_bin(s, pos + 1, read_uint(s, pos, 1)) end
  if c == 0xC5 then return read_bin(s, pos + 2, read_uint(s, pos, 2)) end
  if c == 0xC6 then return read_bin(s, pos + 4, read_uint(s, pos, 4)) end
  if c == 0xDC or c == 0xDD or c == 0xDE or c == 0xDF then
    if depth >= M.MAX_DEPTH then fail("nested deeper than " .. M.MAX_DEPTH .. " levels") end
    local w = (c == 0xDC or c == 0xDE) and 2 or 4
    local n = read_uint(s, pos, w)
    if c <= 0xDD then return read_array(s, pos + w, n, depth + 1) end
    return read_map(s, pos + w, n, depth + 1)
  end
  if c >= 0xD4 and c <= 0xD8 or c >= 0xC7 and c <= 0xC9 then
    fail(string.format("ext type 0x%02x is not supported", c))
  end
  fail(string.format("invalid type byte 0x%02x", c))
end

--- Decode exactly one msgpack value from `s`.
--- Returns the value (`msgpack.null` for a top-level nil, so that `nil` always means failure),
--- or `nil, message` for truncated, invalid or trailing bytes. Never raises on bad input.
---@param s string
---@return any value
---@return string|nil err
function M.decode(s)
  if type(s) ~= "string" then return nil, "msgpack decode: expected a string, got " .. type(s) end
  if #s == 0 then return nil, "msgpack decode: empty input" end
  local ok, v, pos = pcall(decode_value, s, 1, 0)
  if not ok then
    if type(v) == "table" and v.msgpack then return nil, "msgpack decode: " .. v.msgpack end
    return nil, "msgpack decode: malformed input (" .. tostring(v) .. ")"
  end
  if pos <= #s then return nil, "msgpack decode: trailing bytes after one value" end
  if v == nil then v = M.null end
  return v
end

--- Decode one value at byte offset `pos` (1-based); returns value, next position, or nil, err.
---@param s string
---@param pos integer|nil
---@return any value
---@return integer|string next_or_err
function M.decode_one(s, pos)
  local ok, v, nextpos = pcall(decode_value, s, pos or 1, 0)
  if not ok then
    if type(v) == "table" and v.msgpack then return nil, "msgpack decode: " .. v.msgpack end
    return nil, "msgpack decode: malformed input (" .. tostring(v) .. ")"
  end
  if v == nil then v = M.null end
  return v, nextpos
end

return M

--- Numbers <-> msgpack bytes on every Lua, arithmetic only (no `bit` library, no `string.pack`):
--- exact 64-bit integers where the Lua has them (5.3+), integral doubles elsewhere (5.1, LuaJIT),
--- and IEEE 754 floats. What differs between Lua versions is feature-detected (`math.type`,
--- `math.frexp`, `math.ldexp`, the `//` operator), never read from `_VERSION`.
---
--- The readers take the bytes at `pos` as they are: the caller checks that they are there.
---@class npcbridge.msgpack_numbers
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local types = require(base .. "msgpack_types")

local byte, char = string.byte, string.char
local floor, huge, log = math.floor, math.huge, math.log
local tunpack = unpack or table.unpack

-- ---------------------------------------------------------------------------------------------
-- Feature detection
-- ---------------------------------------------------------------------------------------------

local math_type = math.type -- nil on Lua 5.1 / LuaJIT
--- True where Lua has a 64-bit integer subtype (5.3+): int64 values are then exact.
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
  local LOG2 = log(2)
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

-- ---------------------------------------------------------------------------------------------
-- Writing
-- ---------------------------------------------------------------------------------------------

--- Big-endian bytes of a non-negative integral number below 2^(8*n) (or of any integer on 5.3+,
--- two's complement, when it is negative).
---@param v number
---@param n integer
---@return string
local function be_bytes(v, n)
  local t = {}
  for i = n, 1, -1 do
    t[i] = v % 256
    v = idiv(v, 256)
  end
  return char(tunpack(t, 1, n))
end
M.be_bytes = be_bytes

--- A float as msgpack float64 (0xcb and 8 bytes).
---@param x number
---@return string
function M.encode_float(x)
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

--- An integral number in [-2^63, 2^64) in its smallest msgpack int form.
---@param x number
---@return string
function M.encode_int(x)
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

--- A Lua number: an integer (5.3+) as msgpack int, a float as float64. On Lua 5.1 / LuaJIT an
--- integral number that fits int64/uint64 encodes as an int, anything else as float64.
---@param x number
---@return string
function M.encode_number(x)
  if math_type then
    if math_type(x) == "integer" then return M.encode_int(x) end
    return M.encode_float(x)
  end
  if x == floor(x) and x >= -9223372036854775808 and x < 18446744073709551616 then
    return M.encode_int(x)
  end
  return M.encode_float(x)
end

--- The 8 bytes of a boxed uint64 (see `msgpack_types.uint64`), big-endian.
---@param v integer
---@return string
function M.uint64_bytes(v)
  return be_bytes(v, 8)
end

-- ---------------------------------------------------------------------------------------------
-- Reading (the caller has checked that the bytes are there)
-- ---------------------------------------------------------------------------------------------

--- Unsigned big-endian integer of `n` bytes (n <= 4, or any n when the value fits a double).
---@param s string
---@param pos integer
---@param n integer
---@return number
local function read_uint(s, pos, n)
  local v = 0
  for i = pos, pos + n - 1 do v = v * 256 + byte(s, i) end
  return v
end
M.read_uint = read_uint

--- Signed (two's complement) big-endian integer of 1, 2 or 4 bytes.
---@param s string
---@param pos integer
---@param n integer
---@return number
function M.read_signed(s, pos, n)
  local v = read_uint(s, pos, n)
  if n == 1 then return v >= 128 and v - 256 or v end
  if n == 2 then return v >= 32768 and v - 65536 or v end
  if n == 4 then return v >= 2147483648 and v - 4294967296 or v end
  return v
end

--- uint64: exact on 5.3+ (above math.maxinteger: a boxed `msgpack.uint64`), else the nearest double.
---@param s string
---@param pos integer
---@return number|table
function M.read_uint64(s, pos)
  if M.has_integers then
    local v = 0
    for i = pos, pos + 7 do v = v * 256 + byte(s, i) end -- wraps: two's complement bits
    if v < 0 then return types.uint64(v) end
    return v
  end
  local hi, lo = read_uint(s, pos, 4), read_uint(s, pos + 4, 4)
  return hi * 4294967296 + lo
end

--- int64: exact on 5.3+, else the nearest double.
---@param s string
---@param pos integer
---@return number
function M.read_int64(s, pos)
  if M.has_integers then
    local v = 0
    for i = pos, pos + 7 do v = v * 256 + byte(s, i) end
    return v
  end
  local hi, lo = read_uint(s, pos, 4), read_uint(s, pos + 4, 4)
  if hi >= 2147483648 then hi = hi - 4294967296 end
  return hi * 4294967296 + lo
end

--- IEEE 754 double, big-endian.
---@param s string
---@param pos integer
---@return number
function M.read_float64(s, pos)
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

--- IEEE 754 single, big-endian (read only: the encoder always writes float64).
---@param s string
---@param pos integer
---@return number
function M.read_float32(s, pos)
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

return M

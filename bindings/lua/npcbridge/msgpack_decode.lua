--- The msgpack decoder: bytes to Lua values (see `npcbridge.msgpack` for the mapping). Never
--- raises on bad input: truncated or invalid bytes give `nil, message`. Use it through
--- `npcbridge.msgpack`.
---@class npcbridge.msgpack_decode
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local types = require(base .. "msgpack_types")
local numbers = require(base .. "msgpack_numbers")
local utf8scan = require(base .. "utf8scan")

local byte, sub, format = string.byte, string.sub, string.format
local type, tostring, pcall, error, setmetatable = type, tostring, pcall, error, setmetatable
local null, ARRAY, MAP, bin, valid_utf8 = types.null, types.ARRAY, types.MAP, types.bin, utf8scan.valid
local read_uint, read_signed = numbers.read_uint, numbers.read_signed
local read_uint64, read_int64 = numbers.read_uint64, numbers.read_int64
local read_float32, read_float64 = numbers.read_float32, numbers.read_float64

local function fail(msg) error({ msgpack = msg }, 0) end

-- fail unless `n` bytes are there at `pos`
local function need(s, pos, n)
  if pos + n - 1 > #s then fail("truncated input") end
end

-- unsigned big-endian integer of n bytes at pos
local function uint(s, pos, n)
  need(s, pos, n)
  return read_uint(s, pos, n)
end

local function read_str(s, pos, n)
  if n > #s - pos + 1 then fail("truncated input") end
  local v = sub(s, pos, pos + n - 1)
  if not valid_utf8(v) then fail("invalid UTF-8 in a string") end
  return v, pos + n
end

local function read_bin(s, pos, n)
  if n > #s - pos + 1 then fail("truncated input") end
  return bin(sub(s, pos, pos + n - 1)), pos + n
end

local decode_value

local function read_array(s, pos, n, depth, max_depth)
  -- every element takes at least one byte: reject impossible counts before allocating
  if n > #s - pos + 1 then fail("truncated input") end
  local t = {}
  local v
  for i = 1, n do
    v, pos = decode_value(s, pos, depth, max_depth)
    if v == nil then v = null end
    t[i] = v
  end
  return setmetatable(t, ARRAY), pos
end

local function read_map(s, pos, n, depth, max_depth)
  if 2 * n > #s - pos + 1 then fail("truncated input") end
  local t = {}
  local k, v
  for _ = 1, n do
    k, pos = decode_value(s, pos, depth, max_depth)
    if k == nil or k == null then fail("nil map key") end
    if type(k) == "number" and k ~= k then fail("NaN map key") end
    v, pos = decode_value(s, pos, depth, max_depth)
    if v == nil then v = null end
    t[k] = v
  end
  return setmetatable(t, MAP), pos
end

decode_value = function(s, pos, depth, max_depth)
  local c = byte(s, pos)
  if not c then fail("truncated input") end
  pos = pos + 1
  if c < 0x80 then return c, pos end
  if c >= 0xE0 then return c - 256, pos end
  if c >= 0xA0 and c <= 0xBF then return read_str(s, pos, c - 0xA0) end
  if c >= 0x90 and c <= 0x9F then
    if depth >= max_depth then fail("nested deeper than " .. max_depth .. " levels") end
    return read_array(s, pos, c - 0x90, depth + 1, max_depth)
  end
  if c >= 0x80 and c <= 0x8F then
    if depth >= max_depth then fail("nested deeper than " .. max_depth .. " levels") end
    return read_map(s, pos, c - 0x80, depth + 1, max_depth)
  end
  if c == 0xC0 then return nil, pos end
  if c == 0xC2 then return false, pos end
  if c == 0xC3 then return true, pos end
  if c == 0xCC then return uint(s, pos, 1), pos + 1 end
  if c == 0xCD then return uint(s, pos, 2), pos + 2 end
  if c == 0xCE then return uint(s, pos, 4), pos + 4 end
  if c == 0xCF then need(s, pos, 8); return read_uint64(s, pos), pos + 8 end
  if c == 0xD0 then need(s, pos, 1); return read_signed(s, pos, 1), pos + 1 end
  if c == 0xD1 then need(s, pos, 2); return read_signed(s, pos, 2), pos + 2 end
  if c == 0xD2 then need(s, pos, 4); return read_signed(s, pos, 4), pos + 4 end
  if c == 0xD3 then need(s, pos, 8); return read_int64(s, pos), pos + 8 end
  if c == 0xCA then need(s, pos, 4); return read_float32(s, pos), pos + 4 end
  if c == 0xCB then need(s, pos, 8); return read_float64(s, pos), pos + 8 end
  if c == 0xD9 then return read_str(s, pos + 1, uint(s, pos, 1)) end
  if c == 0xDA then return read_str(s, pos + 2, uint(s, pos, 2)) end
  if c == 0xDB then return read_str(s, pos + 4, uint(s, pos, 4)) end
  if c == 0xC4 then return read_bin(s, pos + 1, uint(s, pos, 1)) end
  if c == 0xC5 then return read_bin(s, pos + 2, uint(s, pos, 2)) end
  if c == 0xC6 then return read_bin(s, pos + 4, uint(s, pos, 4)) end
  if c == 0xDC or c == 0xDD or c == 0xDE or c == 0xDF then
    if depth >= max_depth then fail("nested deeper than " .. max_depth .. " levels") end
    local w = (c == 0xDC or c == 0xDE) and 2 or 4
    local n = uint(s, pos, w)
    if c <= 0xDD then return read_array(s, pos + w, n, depth + 1, max_depth) end
    return read_map(s, pos + w, n, depth + 1, max_depth)
  end
  if c >= 0xD4 and c <= 0xD8 or c >= 0xC7 and c <= 0xC9 then
    fail(format("ext type 0x%02x is not supported", c))
  end
  fail(format("invalid type byte 0x%02x", c))
end

-- Decode the value at `pos`: value, next position; or nil, message. A nil read is `null`.
local function decode_at(s, pos, max_depth)
  local ok, v, nextpos = pcall(decode_value, s, pos, 0, max_depth)
  if not ok then
    if type(v) == "table" and v.msgpack then return nil, "msgpack decode: " .. v.msgpack end
    return nil, "msgpack decode: malformed input (" .. tostring(v) .. ")"
  end
  if v == nil then v = null end
  return v, nextpos
end

--- Decode exactly one msgpack value from `s`, arrays and maps nested at most `max_depth` deep.
--- Returns the value (`null` for a top-level nil, so that `nil` always means failure), or
--- `nil, message` for truncated, invalid or trailing bytes.
---@param s string
---@param max_depth integer
---@return any value
---@return string|nil err
function M.decode(s, max_depth)
  if type(s) ~= "string" then return nil, "msgpack decode: expected a string, got " .. type(s) end
  if #s == 0 then return nil, "msgpack decode: empty input" end
  local v, pos = decode_at(s, 1, max_depth)
  if v == nil then return nil, pos end
  if pos <= #s then return nil, "msgpack decode: trailing bytes after one value" end
  return v
end

--- Decode one value at byte offset `pos` (1-based); returns value, next position, or nil, err.
---@param s string
---@param pos integer|nil
---@param max_depth integer
---@return any value
---@return integer|string next_or_err
function M.decode_one(s, pos, max_depth)
  return decode_at(s, pos or 1, max_depth)
end

return M

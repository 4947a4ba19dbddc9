--- The msgpack encoder: Lua values to canonical msgpack (the same bytes as the Python server and
--- `tests/vectors/`): map keys sorted by their UTF-8 bytes, the smallest int/str/bin/array/map
--- form, floats always float64: a number under a protocol float field (`msgpack_types.FLOAT_FIELDS`)
--- or marked with `msgpack.float` too, whatever its value. Use it through `npcbridge.msgpack`.
---@class npcbridge.msgpack_encode
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local types = require(base .. "msgpack_types")
local numbers = require(base .. "msgpack_numbers")
local utf8scan = require(base .. "utf8scan")

local byte, char, concat, sort = string.byte, string.char, table.concat, table.sort
local floor = math.floor
local type, pairs, getmetatable, tostring, pcall, error = type, pairs, getmetatable, tostring, pcall, error
local be_bytes, encode_number, valid_utf8 = numbers.be_bytes, numbers.encode_number, utf8scan.valid
local encode_float = numbers.encode_float
local null, BIN, UINT64, ARRAY, MAP, FLOAT = types.null, types.BIN, types.UINT64, types.ARRAY, types.MAP, types.FLOAT
local FLOAT_FIELDS = types.FLOAT_FIELDS

local function len_header(n, fix, fixmax, c8, c16, c32)
  if fix and n <= fixmax then return char(fix + n) end
  if c8 and n < 256 then return char(c8, n) end
  if n < 65536 then return char(c16) .. be_bytes(n, 2) end
  return char(c32) .. be_bytes(n, 4)
end

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

local encode_value

local function encode_array(t, out, depth, max_depth)
  local n = #t
  out[#out + 1] = len_header(n, 0x90, 15, nil, 0xDC, 0xDD)
  for i = 1, n do encode_value(t[i], out, depth, max_depth) end
end

local function encode_map(t, out, depth, max_depth)
  local keys, kb = {}, {}
  for k in pairs(t) do
    keys[#keys + 1] = k
    kb[k] = key_bytes(k)
  end
  sort(keys, function(a, b) return bytes_less(kb[a], kb[b]) end)
  out[#out + 1] = len_header(#keys, 0x80, 15, nil, 0xDE, 0xDF)
  for i = 1, #keys do
    local k = keys[i]
    local v = t[k]
    encode_value(k, out, depth, max_depth)
    -- a protocol float: float64 even when whole (Lua 5.1 cannot tell 2.0 from 2, 5.3+ has `1`)
    if type(v) == "number" and FLOAT_FIELDS[k] then
      out[#out + 1] = encode_float(v + 0.0)
    else
      encode_value(v, out, depth, max_depth)
    end
  end
end

encode_value = function(v, out, depth, max_depth)
  local tv = type(v)
  if v == nil or v == null then
    out[#out + 1] = "\192"
  elseif tv == "boolean" then
    out[#out + 1] = v and "\195" or "\194"
  elseif tv == "number" then
    out[#out + 1] = encode_number(v)
  elseif tv == "string" then
    -- a str must be UTF-8 (the server rejects the whole message otherwise): bytes go in a bin
    if not valid_utf8(v) then error({ msgpack = "a string is not valid UTF-8 (wrap bytes in msgpack.bin)" }) end
    out[#out + 1] = len_header(#v, 0xA0, 31, 0xD9, 0xDA, 0xDB)
    out[#out + 1] = v
  elseif tv == "table" then
    if depth > max_depth then error({ msgpack = "nested deeper than " .. max_depth .. " levels" }) end
    local mt = getmetatable(v)
    if mt == BIN then
      out[#out + 1] = len_header(#v.data, nil, 0, 0xC4, 0xC5, 0xC6)
      out[#out + 1] = v.data
    elseif mt == FLOAT then
      out[#out + 1] = encode_float(v.value + 0.0)
    elseif mt == UINT64 then
      out[#out + 1] = "\207" .. numbers.uint64_bytes(v.value)
    elseif mt == ARRAY then
      encode_array(v, out, depth + 1, max_depth)
    elseif mt == MAP then
      encode_map(v, out, depth + 1, max_depth)
    elseif is_sequence(v) then
      encode_array(v, out, depth + 1, max_depth)
    else
      encode_map(v, out, depth + 1, max_depth)
    end
  else
    error({ msgpack = "cannot encode a " .. tv })
  end
end

--- Encode a Lua value as canonical msgpack; tables nested deeper than `max_depth` are refused.
---@param value any
---@param max_depth integer
---@return string|nil bytes
---@return string|nil err
function M.encode(value, max_depth)
  local out = {}
  local ok, err = pcall(encode_value, value, out, 0, max_depth)
  if not ok then
    if type(err) == "table" and err.msgpack then return nil, "msgpack encode: " .. err.msgpack end
    return nil, "msgpack encode: " .. tostring(err)
  end
  return concat(out)
end

return M

--- JSON for the npcbridge HTTP transport. Decoding is the engine's (`minetest.parse_json`, passed
--- in); encoding is done here because `minetest.write_json` writes every number as a float
--- (`1.0`), which the protocol's integer fields (`max_tokens`, `importance`, `limit`, integer
--- ids) refuse, and writes an empty table as `null`. Plain Lua 5.1 (runs on LuaJIT and 5.4).
local M = {}

local type, pairs, ipairs, tostring, pcall = type, pairs, ipairs, tostring, pcall
local floor, huge = math.floor, math.huge
local concat, sort, format, byte = table.concat, table.sort, string.format, string.byte

--- the protocol floats (docs/protocol.md, "Canonical encoding"): always written with a fraction;
--- the Lua client's list (msgpack_types.lua)
M.FLOAT_FIELDS = (...).FLOAT_FIELDS

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function escape_char(c)
  return ESCAPES[c] or format("\\u%04x", byte(c))
end

local function encode_string(s)
  -- control characters escaped; UTF-8 passes through unchanged (JSON text is UTF-8)
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end

-- 2^53: beyond it a Lua 5.1 number no longer holds every integer
local SAFE_INT = 9007199254740992

local function encode_number(n, as_float)
  if n ~= n or n == huge or n == -huge then
    return nil, "a number that is not finite"
  end
  if n == floor(n) and n > -SAFE_INT and n < SAFE_INT then
    if as_float then
      return format("%.1f", n)
    end
    return format("%d", n)
  end
  return format("%.17g", n)
end

-- an array: keys 1..n, nothing else (an empty table is written as an object, `{}`: every
-- empty value the protocol sends is a map: context, args, persona parts)
local function array_length(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k ~= floor(k) then
      return nil
    end
    if k > n then
      n = k
    end
  end
  if n == 0 then
    return nil
  end
  for i = 1, n do
    if t[i] == nil then
      return nil
    end
  end
  return n
end

local encode_value

local function encode_table(t, depth)
  if depth > 32 then
    return nil, "tables nested too deep (or a cycle)"
  end
  local out = {}
  local n = array_length(t)
  if n then
    for i = 1, n do
      local item, err = encode_value(t[i], depth + 1, false)
      if not item then
        return nil, err
      end
      out[i] = item
    end
    return "[" .. concat(out, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      return nil, "a table mixing string and other keys"
    end
    keys[#keys + 1] = k
  end
  sort(keys) -- byte order: stable output, like the canonical encoders
  for i, k in ipairs(keys) do
    local item, err = encode_value(t[k], depth + 1, M.FLOAT_FIELDS[k])
    if not item then
      return nil, err
    end
    out[i] = encode_string(k) .. ":" .. item
  end
  return "{" .. concat(out, ",") .. "}"
end

encode_value = function(v, depth, as_float)
  local kind = type(v)
  if kind == "string" then
    return encode_string(v)
  elseif kind == "number" then
    return encode_number(v, as_float)
  elseif kind == "boolean" then
    return tostring(v)
  elseif kind == "table" then
    return encode_table(v, depth)
  end
  return nil, "a value of type " .. kind
end

--- Encode `value` (tables of strings, numbers, booleans) as compact JSON with sorted keys.
--- Integral numbers are integers except under a protocol-float field name.
---@return string|nil json, string|nil error
function M.encode(value)
  return encode_value(value, 0, false)
end

--- Decode JSON text with the engine's decoder; nil and a reason when it is not a JSON object.
---@param parse fun(text: string): any the engine's `minetest.parse_json`
function M.decode_object(parse, text)
  if type(text) ~= "string" or text == "" then
    return nil, "an empty body"
  end
  local ok, value = pcall(parse, text)
  if not ok or type(value) ~= "table" then
    return nil, "a body that is not a JSON object"
  end
  return value
end

return M

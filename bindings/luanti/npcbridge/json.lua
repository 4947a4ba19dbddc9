--- JSON for the npcbridge HTTP transport, both ways, with the Lua client's convention for what Lua
--- cannot tell apart (msgpack_types.lua, shared with bindings/lua): a table marked with
--- `types.array` is a JSON array and one marked with `types.map` an object, even when empty; an
--- unmarked table is an array when it is a non-empty sequence 1..n, else an object (so `{}` is
--- `{}`: context, args). The decoder marks every array and object it reads, so what the mod read
--- is written back the same, `[]` included.
---
--- Not the engine's `minetest.write_json` / `parse_json`: write_json writes an empty table as
--- `null` and cannot tell `[]` from `{}`, and parse_json reads both `[]` and `{}` as the same
--- unmarked empty table (a persona's `actions = []` would come back as `{}`, which the server
--- refuses). The server reads any whole number as an integer (docs/protocol.md, HTTP transport),
--- so write_json's `1.0` would do; this writer still writes integers as integers and the
--- protocol's float fields with a fraction, the canonical form. Plain Lua 5.1 (runs on LuaJIT and
--- 5.4).
local M = {}

local types = ...
local type, pairs, ipairs, tostring, tonumber, getmetatable = type, pairs, ipairs, tostring,
  tonumber, getmetatable
local setmetatable, pcall, error = setmetatable, pcall, error
local floor, huge = math.floor, math.huge
local concat, sort, format, byte, char, sub, find = table.concat, table.sort, string.format,
  string.byte, string.char, string.sub, string.find
local ARRAY, MAP, null = types.ARRAY, types.MAP, types.null

--- the protocol floats (docs/protocol.md, "Canonical encoding"): always written with a fraction;
--- the Lua client's list (msgpack_types.lua)
M.FLOAT_FIELDS = types.FLOAT_FIELDS

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

-- the length of a table written as an array, nil for an object: a marked one as marked, an
-- unmarked one when its keys are 1..n and nothing else (so an unmarked empty table is an object)
local function array_length(t)
  local mark = getmetatable(t)
  if mark == MAP then
    return nil
  end
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
    return mark == ARRAY and 0 or nil
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
  if getmetatable(t) == ARRAY then
    return nil, "a table marked as an array with keys other than 1..n"
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
  if v == null then
    return "null"
  end
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

-- decoding: `fail(reason)` throws a table caught by `decode`, so nothing else is caught
local Failure = {}

local function fail(reason, pos)
  error(setmetatable({ reason = reason .. " at byte " .. pos }, Failure), 0)
end

local function skip_space(text, pos)
  return find(text, "[^ \t\r\n]", pos) or #text + 1
end

local function utf8_char(code)
  if code < 0x80 then
    return char(code)
  elseif code < 0x800 then
    return char(0xC0 + floor(code / 0x40), 0x80 + code % 0x40)
  elseif code < 0x10000 then
    return char(0xE0 + floor(code / 0x1000), 0x80 + floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end
  return char(0xF0 + floor(code / 0x40000), 0x80 + floor(code / 0x1000) % 0x40,
    0x80 + floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local UNESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
  r = "\r", t = "\t" }

-- the string whose opening quote is at `pos`: value, position after the closing quote
local function read_string(text, pos)
  local parts, from = {}, pos + 1
  while true do
    local at = find(text, '["\\%c]', from)
    if not at then
      fail("an unterminated string", pos)
    end
    local c = sub(text, at, at)
    parts[#parts + 1] = sub(text, from, at - 1)
    if c == '"' then
      return concat(parts), at + 1
    elseif c ~= "\\" then
      fail("a control character in a string", at)
    end
    local e = sub(text, at + 1, at + 1)
    if e == "u" then
      local code = tonumber(sub(text, at + 2, at + 5), 16)
      from = at + 6
      if not code or not find(sub(text, at + 2, at + 5), "^%x%x%x%x$") then
        fail("a bad \\u escape", at)
      end
      if code >= 0xD800 and code < 0xDC00 and sub(text, from, from + 1) == "\\u" then
        local low = tonumber(sub(text, from + 2, from + 5), 16)
        if low and low >= 0xDC00 and low < 0xE000 then
          code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
          from = from + 6
        end
      end
      parts[#parts + 1] = utf8_char(code)
    elseif UNESCAPES[e] then
      parts[#parts + 1] = UNESCAPES[e]
      from = at + 2
    else
      fail("a bad escape", at)
    end
  end
end

local read_value

local function read_array(text, pos, depth)
  local out, n = setmetatable({}, ARRAY), 0
  pos = skip_space(text, pos + 1)
  if sub(text, pos, pos) == "]" then
    return out, pos + 1
  end
  while true do
    local v
    v, pos = read_value(text, pos, depth)
    n = n + 1
    out[n] = v == nil and null or v
    pos = skip_space(text, pos)
    local c = sub(text, pos, pos)
    if c == "]" then
      return out, pos + 1
    elseif c ~= "," then
      fail("expected , or ] in an array", pos)
    end
    pos = pos + 1
  end
end

local function read_object(text, pos, depth)
  local out = setmetatable({}, MAP)
  pos = skip_space(text, pos + 1)
  if sub(text, pos, pos) == "}" then
    return out, pos + 1
  end
  while true do
    if sub(text, pos, pos) ~= '"' then
      fail("expected a string key", pos)
    end
    local key, v
    key, pos = read_string(text, pos)
    pos = skip_space(text, pos)
    if sub(text, pos, pos) ~= ":" then
      fail("expected :", pos)
    end
    v, pos = read_value(text, skip_space(text, pos + 1), depth)
    out[key] = v -- null is nil here, as the engine's parse_json reads it
    pos = skip_space(text, pos)
    local c = sub(text, pos, pos)
    if c == "}" then
      return out, pos + 1
    elseif c ~= "," then
      fail("expected , or } in an object", pos)
    end
    pos = skip_space(text, pos + 1)
  end
end

local LITERALS = { ["true"] = true, ["false"] = false }

read_value = function(text, pos, depth)
  if depth > 64 then
    fail("nesting too deep", pos)
  end
  pos = skip_space(text, pos)
  local c = sub(text, pos, pos)
  if c == "{" then
    return read_object(text, pos, depth + 1)
  elseif c == "[" then
    return read_array(text, pos, depth + 1)
  elseif c == '"' then
    return read_string(text, pos)
  end
  local word = text:match("^%a+", pos)
  if word == "null" then
    return nil, pos + 4
  elseif word and LITERALS[word] ~= nil then
    return LITERALS[word], pos + #word
  end
  local number = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  local value = number and tonumber(number)
  if not value then
    fail("an unexpected character", pos)
  end
  return value, pos + #number
end

--- Decode JSON text that must be an object; nil and a reason otherwise. Arrays and objects come
--- back marked (`types.array` / `types.map`), `null` is nil in an object and `types.null` in an
--- array.
---@return table|nil value, string|nil error
function M.decode_object(text)
  if type(text) ~= "string" or text == "" then
    return nil, "an empty body"
  end
  local ok, value, pos = pcall(read_value, text, 1, 0)
  if not ok then
    if getmetatable(value) ~= Failure then
      error(value, 0)
    end
    return nil, "a body that is not JSON (" .. value.reason .. ")"
  end
  if skip_space(text, pos) <= #text then
    return nil, "a body with text after its JSON value"
  end
  if getmetatable(value) ~= MAP then
    return nil, "a body that is not a JSON object"
  end
  return value
end

return M

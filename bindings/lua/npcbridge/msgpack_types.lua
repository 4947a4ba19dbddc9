--- The Lua values that stand for msgpack types Lua has no value for: arrays and maps told apart
--- by a metatable, bin, boxed uint64, a number marked as a float and a nil that can live inside a
--- table; and the names of the protocol's float fields. The encoder and the decoder share them;
--- `npcbridge.msgpack` re-exports every field.
---@class npcbridge.msgpack_types
local M = { _VERSION = "0.1.0" }

local type, setmetatable, getmetatable, error = type, setmetatable, getmetatable, error

--- The protocol's float fields (docs/protocol.md, "Canonical encoding"; the same names as
--- `float_fields` in tests/vectors/canonical.json). A number under one of these keys, in any map,
--- is written as float64 whatever its value, so `temperature = 1`, and `2.0` on Lua 5.1 / LuaJIT
--- (which cannot tell it from `2`), go on the wire as the floats they stand for. This is the one
--- list of them: the encoder reads it, `npcbridge.msgpack` re-exports it.
M.FLOAT_FIELDS = {
  temperature = true,
  cost_usd = true,
  queue_ms = true, -- timing.queue_ms
  ttft_ms = true, -- timing.ttft_ms
  total_ms = true, -- timing.total_ms
  ttfa_ms = true, -- reply.end voice.ttfa_ms
  speed = true, -- a voice's speed
  at = true, -- a memory item's time
  score = true, -- a memory item's relevance
}

--- Metatable carried by decoded arrays (and by tables passed through `array`).
M.ARRAY = { __name = "msgpack.array" }
--- Metatable carried by decoded maps (and by tables passed through `map`).
M.MAP = { __name = "msgpack.map" }
--- Metatable of bin values: `{data = <string>}`.
M.BIN = { __name = "msgpack.bin", __tostring = function(b) return "msgpack.bin(" .. #b.data .. " bytes)" end }
--- Metatable of boxed uint64 values above math.maxinteger (Lua 5.3+ only): `{value = <integer>}`,
--- the value holding the same 64 bits (negative as a Lua integer).
M.UINT64 = { __name = "msgpack.uint64" }

--- The nil that can live inside a table.
M.null = setmetatable({}, { __name = "msgpack.null", __tostring = function() return "msgpack.null" end })

--- Metatable of numbers marked as floats: `{value = <number>}`.
M.FLOAT = { __name = "msgpack.float", __tostring = function(f) return "msgpack.float(" .. f.value .. ")" end }

--- Mark a number as a float: it encodes as float64 whatever its value and wherever it is (for a
--- game's own fields; the protocol's float fields need no marker). Decodes as a plain number.
---@param x number
---@return table float a value that encodes as msgpack float64
function M.float(x)
  if type(x) ~= "number" then error("msgpack.float: a number is needed, got a " .. type(x), 2) end
  return setmetatable({ value = x }, M.FLOAT)
end

--- Is `v` a number marked with `float`?
---@param v any
---@return boolean
function M.is_float(v) return type(v) == "table" and getmetatable(v) == M.FLOAT end

--- Mark a table as a msgpack array (an empty one would otherwise encode as a map).
---@generic T
---@param t T|nil
---@return T
function M.array(t) return setmetatable(t or {}, M.ARRAY) end

--- Mark a table as a msgpack map.
---@generic T
---@param t T|nil
---@return T
function M.map(t) return setmetatable(t or {}, M.MAP) end

--- Wrap bytes so that they encode as msgpack bin (a Lua string encodes as str, which is UTF-8).
---@param s string
---@return table bin a value that encodes as msgpack bin
function M.bin(s) return setmetatable({ data = s }, M.BIN) end

--- Is `v` a bin value?
---@param v any
---@return boolean
function M.is_bin(v) return type(v) == "table" and getmetatable(v) == M.BIN end

--- Is `v` a table marked as an array (every decoded array is)?
---@param v any
---@return boolean
function M.is_array(v) return type(v) == "table" and getmetatable(v) == M.ARRAY end

--- Is `v` a table marked as a map (every decoded map is)?
---@param v any
---@return boolean
function M.is_map(v) return type(v) == "table" and getmetatable(v) == M.MAP end

--- A boxed uint64 holding the 64 bits of the integer `v` (Lua 5.3+).
---@param v integer
---@return table
function M.uint64(v) return setmetatable({ value = v }, M.UINT64) end

return M

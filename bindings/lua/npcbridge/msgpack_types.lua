--- The Lua values that stand for msgpack types Lua has no value for: arrays and maps told apart
--- by a metatable, bin, boxed uint64 and a nil that can live inside a table. The encoder and the
--- decoder share them; `npcbridge.msgpack` re-exports every field.
---@class npcbridge.msgpack_types
local M = { _VERSION = "0.1.0" }

local type, setmetatable, getmetatable = type, setmetatable, getmetatable

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

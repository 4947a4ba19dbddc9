--- Pure-Lua msgpack codec for npcbridge (Lua 5.1, 5.2, 5.3, 5.4, LuaJIT, LÖVE).
---
--- Arithmetic only: no `bit` library, no `goto`, no `string.pack`; the few things that differ
--- between Lua versions are feature-detected (`math.type`, `math.frexp`, the `//` operator).
---
--- Encoding is canonical (the same bytes as the Python server and `tests/vectors/`): map keys sorted
--- by their UTF-8 bytes, the smallest int/str/bin/array/map form, floats always float64. A field
--- left nil is absent from its table, so it is left out of the message.
---
--- Lua values and msgpack types:
---   nil, msgpack.null         <-> nil      (inside arrays and maps nil decodes to `msgpack.null`)
---   boolean                   <-> bool
---   integer                   <-> int      (Lua 5.3+: `math.type(x) == "integer"`; exact 64-bit.
---                                           uint64 values above math.maxinteger decode to a boxed
---                                           `msgpack.uint64` so they re-encode exactly.)
---   float                     <-> float64  (float32 is read, never written)
---   a number under a protocol float field (`msgpack.FLOAT_FIELDS`: temperature, cost_usd, timing's
---   queue_ms/ttft_ms/total_ms, voice.ttfa_ms and speed, a memory item's at and score) -> float64, whatever its value
---   msgpack.float(x)           -> float64, whatever its value (decodes as a plain number)
---   Lua 5.1 / LuaJIT numbers elsewhere: an integral number in the int64/uint64 range encodes as an
---       integer, anything else as float64. Integers beyond 2^53 decode to the nearest double.
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
---
--- The work is done by `msgpack_encode`, `msgpack_decode`, `msgpack_numbers` (integers and floats
--- to bytes and back) and `msgpack_types` (the marker values); this module is the API.
---@class npcbridge.msgpack
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local types = require(base .. "msgpack_types")
local numbers = require(base .. "msgpack_numbers")
local encoder = require(base .. "msgpack_encode")
local decoder = require(base .. "msgpack_decode")
local utf8scan = require(base .. "utf8scan")

--- Metatable carried by decoded arrays (and by tables passed through `msgpack.array`).
M.ARRAY = types.ARRAY
--- Metatable carried by decoded maps (and by tables passed through `msgpack.map`).
M.MAP = types.MAP
--- Metatable of bin values: `{data = <string>}`.
M.BIN = types.BIN
--- Metatable of boxed uint64 values above math.maxinteger (Lua 5.3+ only).
M.UINT64 = types.UINT64
--- Metatable of numbers marked with `msgpack.float`: `{value = <number>}`.
M.FLOAT = types.FLOAT
--- The nil that can live inside a table.
M.null = types.null
--- The protocol's float fields, a set of names: a number under one of them is written as float64.
M.FLOAT_FIELDS = types.FLOAT_FIELDS

M.array, M.map, M.bin, M.float = types.array, types.map, types.bin, types.float
M.is_bin, M.is_array, M.is_map, M.is_float = types.is_bin, types.is_array, types.is_map, types.is_float

--- True where Lua has 64-bit integers (5.3+): int64 and uint64 values are then exact.
M.has_integers = numbers.has_integers

--- Largest nesting of arrays/maps `decode` accepts (deeper input is an error, not a stack overflow).
M.MAX_DEPTH = 100

--- Return true when `s` is well-formed UTF-8 (the check `decode` applies to every str, and
--- `encode` to every Lua string).
---@param s string
---@return boolean
M.valid_utf8 = utf8scan.valid

--- Encode a Lua value as canonical msgpack.
---@param value any
---@return string|nil bytes
---@return string|nil err
function M.encode(value)
  return encoder.encode(value, M.MAX_DEPTH)
end

--- Decode exactly one msgpack value from `s`.
--- Returns the value (`msgpack.null` for a top-level nil, so that `nil` always means failure),
--- or `nil, message` for truncated, invalid or trailing bytes. Never raises on bad input.
---@param s string
---@return any value
---@return string|nil err
function M.decode(s)
  return decoder.decode(s, M.MAX_DEPTH)
end

--- Decode one value at byte offset `pos` (1-based); returns value, next position, or nil, err.
---@param s string
---@param pos integer|nil
---@return any value
---@return integer|string next_or_err
function M.decode_one(s, pos)
  return decoder.decode_one(s, pos, M.MAX_DEPTH)
end

return M

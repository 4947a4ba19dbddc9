--- Reading and writing the audio of the voice messages, with no engine: PCM16 samples of a
--- `reply.audio` frame, its mouth-openness envelope, PCM16 bytes from samples and a WAV file
--- around them (for `speech`). Pure Lua, arithmetic only (5.1, 5.4, LuaJIT); the LÖVE player and
--- recorder (npcbridge.love_voice) are built on it.
---@class npcbridge.voice
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local msgpack = require(base .. "msgpack")

local byte, char, floor, concat, type = string.byte, string.char, math.floor, table.concat, type

--- The bytes of a bin field (a decoded `audio` or `mouth`), or of a string; "" for anything else.
---@param v any
---@return string
function M.bytes(v)
  if msgpack.is_bin(v) then return v.data end
  if type(v) == "string" then return v end
  return ""
end

--- Samples per channel in a PCM16 frame.
---@param frame table a `reply.audio` message
---@return integer
function M.sample_count(frame)
  local channels = frame.channels or 1
  return floor(#M.bytes(frame.audio) / (2 * channels))
end

--- Seconds of audio in a frame, from its bytes (its `duration_ms` rounds).
---@param frame table
---@return number
function M.duration(frame)
  return M.sample_count(frame) / (frame.sample_rate or 24000)
end

--- The value (-1..1) of the little-endian signed 16-bit sample at 1-based sample index `i`
--- (interleaved: channel c of sample frame n is index (n - 1) * channels + c).
---@param pcm string
---@param i integer
---@return number
function M.sample(pcm, i)
  local lo, hi = byte(pcm, 2 * i - 1, 2 * i)
  local v = lo + hi * 256
  if v >= 32768 then v = v - 65536 end
  return v / 32768
end

--- Mouth openness (0..1) `seconds` into a frame, from its `mouth` envelope (one byte per
--- 1/mouth_hz s); 0 outside the frame or when it has none.
---@param frame table
---@param seconds number
---@return number
function M.mouth_at(frame, seconds)
  local mouth = M.bytes(frame.mouth)
  if seconds < 0 or #mouth == 0 then return 0 end
  local i = floor(seconds * (frame.mouth_hz or 50)) + 1
  if i > #mouth then return 0 end
  return byte(mouth, i) / 255
end

--- Little-endian signed 16-bit bytes of samples -1..1 (clipped).
---@param samples number[]
---@return string
function M.pcm16(samples)
  local out = {}
  for i = 1, #samples do
    local v = floor(samples[i] * 32767 + 0.5)
    if v > 32767 then v = 32767 elseif v < -32768 then v = -32768 end
    if v < 0 then v = v + 65536 end
    out[i] = char(v % 256, floor(v / 256))
  end
  return concat(out)
end

local function u32(n) return char(n % 256, floor(n / 256) % 256, floor(n / 65536) % 256, floor(n / 16777216) % 256) end
local function u16(n) return char(n % 256, floor(n / 256) % 256) end

--- A WAV file (RIFF, PCM 16-bit) holding `pcm`.
---@param pcm string little-endian PCM16 bytes
---@param sample_rate integer
---@param channels integer|nil default 1
---@return string
function M.wav(pcm, sample_rate, channels)
  channels = channels or 1
  return concat({
    "RIFF", u32(36 + #pcm), "WAVE",
    "fmt ", u32(16), u16(1), u16(channels), u32(sample_rate), u32(sample_rate * channels * 2),
    u16(channels * 2), u16(16),
    "data", u32(#pcm), pcm,
  })
end

return M

--- Speech in: the player's voice instead of text. `speech` sends a whole utterance in one
--- message; `speech_start` opens a chunked one (push-to-talk: `speech.start`, a `speech.chunk`
--- per piece of audio, `speech.end`). The server answers `transcript`, then the turn exactly as
--- for a `say` under the same id, so the callbacks are a `say`'s plus `on_transcript`. Methods
--- mixed into the client by `npcbridge` (init.lua); the turn callbacks come from client_api.lua.
---@class npcbridge.Client
local M = {}

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local msgpack = require(base .. "msgpack")
local errors = require(base .. "errors")
local socket = require("socket")

local setmetatable, type, sub = setmetatable, type, string.sub
local new_error = errors.new

---@class npcbridge.SpeechOptions: npcbridge.SayOptions
---@field format "wav"|"pcm16"|nil default: "wav" when the bytes start with a RIFF header, else "pcm16"
---@field sample_rate integer|nil of pcm16 audio (default 16000)
---@field channels integer|nil of pcm16 audio (default 1)
---@field on_transcript fun(text: string, msg: table)|nil what the server heard, before the reply

-- The `speech` / `speech.start` fields: the turn's optional fields and the audio's format.
local function speech_fields(self, npc, player, opts, audio)
  local fields = self._turn_fields(opts)
  fields.npc, fields.player = npc, player
  local format = opts.format
  if format == nil then format = (audio and sub(audio, 1, 4) == "RIFF") and "wav" or "pcm16" end
  fields.format = format
  fields.sample_rate = opts.sample_rate or 16000
  fields.channels = opts.channels or 1
  return fields
end

--- Send the player's whole utterance (WAV, or raw little-endian PCM16) to an NPC. The reply
--- comes as for `say` (on_transcript first). The message must fit the server's
--- `limits.max_message_bytes`; for longer speech use `speech_start`.
---@param npc string
---@param player string
---@param audio string the bytes
---@param opts npcbridge.SpeechOptions|nil
---@return any|nil id
---@return npcbridge.Error|nil err
function M:speech(npc, player, audio, opts)
  opts = opts or {}
  if type(audio) ~= "string" or audio == "" then
    return self:_refuse(opts.on_error, new_error("bad_request", "speech: audio must be a non-empty string of bytes", false))
  end
  local fields = speech_fields(self, npc, player, opts, audio)
  fields.audio = msgpack.bin(audio)
  return self:request("speech", fields, self._turn_callbacks(opts))
end

---@class npcbridge.SpeechStream
---@field id any the request id (cancel it with `client:cancel(id)`)
---@field seq integer chunks sent so far
---@field ended boolean `finish` was called
local SpeechStream = {}
SpeechStream.__index = SpeechStream
M.SpeechStream = SpeechStream

--- Open a chunked utterance (the player pressed push-to-talk). Returns a stream: `:chunk(bytes)`
--- for each piece of PCM16 audio as it is recorded, `:finish()` when the player lets go. The
--- reply's callbacks are those of `speech`. `format` is "pcm16" unless given.
---@param npc string
---@param player string
---@param opts npcbridge.SpeechOptions|nil
---@return npcbridge.SpeechStream|nil stream
---@return npcbridge.Error|nil err
function M:speech_start(npc, player, opts)
  opts = opts or {}
  local fields = speech_fields(self, npc, player, opts, nil)
  local id, err = self:request("speech.start", fields, self._turn_callbacks(opts))
  if id == nil then return nil, err end
  return setmetatable({ client = self, id = id, seq = 0, ended = false }, SpeechStream)
end

--- Send the next piece of audio (raw bytes in the stream's format). Empty pieces are skipped.
---@param audio string
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function SpeechStream:chunk(audio)
  if self.ended then return nil, new_error("bad_request", "speech: chunk after finish", false) end
  if type(audio) ~= "string" then return nil, new_error("bad_request", "speech: a chunk must be a string of bytes", false) end
  if audio == "" then return true end
  local ok, err = self.client:send("speech.chunk", { id = self.id, seq = self.seq, audio = msgpack.bin(audio) })
  if not ok then return nil, err end
  self.seq = self.seq + 1
  local req = self.client.router:get(self.id) -- a long utterance is not a request with no answer
  if req then req.deadline = socket.gettime() + self.client:_timeout(req.cb) end
  return true
end

--- The player stopped talking: the server transcribes the utterance and the turn runs.
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function SpeechStream:finish()
  if self.ended then return true end
  self.ended = true
  return self.client:send("speech.end", { id = self.id })
end

return M

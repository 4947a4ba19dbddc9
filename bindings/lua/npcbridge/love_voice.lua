--- Voice in LÖVE 11: a speaker that plays an NPC's `reply.audio` frames gaplessly, in order, on
--- a QueueableSource (and tells how open the mouth is right now), and a push-to-talk recorder
--- that sends the microphone as a chunked `speech`.
---
---   local love_voice = require("npcbridge.love_voice")
---   local speaker = love_voice.new_speaker()
---   client:say("blacksmith", "player1", "Fix my sword?", {
---     voice = true, on_audio = function(frame) speaker:push(frame) end })
---   function love.update() client:update(); speaker:update(); mic:update() end
---   -- mouth: speaker:mouth() (0..1); talking: speaker:is_speaking()
---   local mic = love_voice.new_recorder()
---   function love.keypressed(k) if k == "space" then speaker:barge_in(client); mic:start(client, "blacksmith", "player1") end end
---   function love.keyreleased(k) if k == "space" then mic:stop() end end
---
--- Needs the `audio` and `sound` modules (conf.lua). Nothing here touches `love` until a speaker
--- or recorder is used, so the module loads in any Lua.
---@class npcbridge.love_voice
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local voice = require(base .. "voice")
local errors = require(base .. "errors")

local setmetatable, rawget, pcall, pairs, require, floor = setmetatable, rawget, pcall, pairs, require, math.floor
local remove = table.remove
local G = _G

-- LuaJIT's ffi when there is one: frames are then copied into SoundData in one call.
local has_ffi, ffi = pcall(require, "ffi")
if not has_ffi then ffi = nil end

local function love() return rawget(G, "love") end

--- A LÖVE SoundData holding a PCM16 frame's samples.
---@param frame table a `reply.audio` message (format "pcm16")
---@return userdata SoundData
function M.sound_data(frame)
  local pcm = voice.bytes(frame.audio)
  local channels = frame.channels or 1
  local count = voice.sample_count(frame)
  local sd = love().sound.newSoundData(count, frame.sample_rate or 24000, 16, channels)
  if ffi and sd.getFFIPointer then
    ffi.copy(sd:getFFIPointer(), pcm, count * channels * 2) -- 16-bit SoundData is little-endian int16 here
  else
    for i = 1, count * channels do sd:setSample(i - 1, voice.sample(pcm, i)) end
  end
  return sd
end

--- PCM16 bytes of a 16-bit SoundData (as recorded).
---@param sd userdata SoundData
---@return string
function M.pcm16_of(sd)
  local n = sd:getSampleCount() * sd:getChannelCount()
  if ffi and sd.getFFIPointer and sd:getBitDepth() == 16 then
    return ffi.string(sd:getFFIPointer(), n * 2)
  end
  local samples = {}
  for i = 1, n do samples[i] = sd:getSample(i - 1) end
  return voice.pcm16(samples)
end

-- Speaker -------------------------------------------------------------------------------------

---@class npcbridge.love_voice.Speaker
---@field source userdata|nil the QueueableSource (made for the first frame's rate and channels)
---@field volume number
---@field reply_id any the id of the reply whose frames it plays (for barge_in)
local Speaker = {}
Speaker.__index = Speaker
M.Speaker = Speaker

---@class npcbridge.love_voice.SpeakerOptions
---@field buffers integer|nil buffers the source holds (default 8)
---@field volume number|nil 0..1 (default 1)
---@field on_start fun()|nil the NPC started speaking (the first frame plays)
---@field on_finish fun(reason: "done"|"stopped")|nil it finished what it had or was stopped

--- A speaker; frames pushed to it play one after another with no gap.
---@param opts npcbridge.love_voice.SpeakerOptions|nil
---@return npcbridge.love_voice.Speaker
function M.new_speaker(opts)
  opts = opts or {}
  return setmetatable({
    opts = opts, buffers = opts.buffers or 8, volume = opts.volume or 1,
    waiting = {}, -- {frame, sd} not on the source yet
    playing = {}, -- {frame, sd} on the source, oldest first
    speaking = false, played_s = 0, frames_played = 0,
  }, Speaker)
end

--- Add a `reply.audio` frame (call it from `on_audio`: frames come in order).
---@param frame table
function Speaker:push(frame)
  if frame.format ~= nil and frame.format ~= "pcm16" then return end
  if voice.sample_count(frame) == 0 then return end
  self.reply_id = frame.id
  self.waiting[#self.waiting + 1] = { frame = frame, sd = M.sound_data(frame) }
  self:update()
end

-- A source fits a frame when its rate and channels match.
local function fits(source_format, frame)
  return source_format and source_format[1] == (frame.sample_rate or 24000) and source_format[2] == (frame.channels or 1)
end

-- Count the entries the source finished since the last call as played.
function Speaker:_account()
  local source = self.source
  if not source or not self.started then return end
  local done
  if not source:isPlaying() then
    -- it ran dry: everything queued was played. Stop it, so that the buffers it played (which
    -- LÖVE may not have taken back yet) are dropped instead of playing again with the next play()
    done = #self.playing
    source:stop()
    self.started = false
  else
    done = #self.playing - (self.buffers - source:getFreeBufferCount())
  end
  for _ = 1, done do
    local entry = remove(self.playing, 1)
    self.played_s = self.played_s + entry.sd:getDuration()
    self.frames_played = self.frames_played + 1
  end
end

--- Move finished buffers out, queue waiting frames, keep the source playing. Call once a frame.
function Speaker:update()
  self:_account()
  local nxt = self.waiting[1]
  if nxt and not fits(self.format, nxt.frame) and #self.playing == 0 then
    if self.source then self.source:stop() end -- another rate: a new source once the old one ran dry
    local info = nxt.frame
    self.format = { info.sample_rate or 24000, info.channels or 1 }
    self.source = love().audio.newQueueableSource(self.format[1], 16, self.format[2], self.buffers)
    self.source:setVolume(self.volume)
    self.started = false
  end
  local source = self.source
  while source and self.waiting[1] and fits(self.format, self.waiting[1].frame) and source:getFreeBufferCount() > 0 do
    local entry = remove(self.waiting, 1)
    source:queue(entry.sd)
    self.playing[#self.playing + 1] = entry
  end
  if #self.playing > 0 then
    if not self.started then -- the first frame, or the next one after running dry
      source:play()
      self.started = true
    end
    if not self.speaking then
      self.speaking = true
      if self.opts.on_start then self.opts.on_start() end
    end
  elseif self.speaking and #self.waiting == 0 then
    self:_finished("done")
  end
end

function Speaker:_finished(reason)
  self.speaking = false
  if self.opts.on_finish then self.opts.on_finish(reason) end
end

--- True from the first frame played until the last one finished (or `stop`).
---@return boolean
function Speaker:is_speaking() return self.speaking end

--- Seconds of speech played so far (since the speaker was made).
---@return number
function Speaker:position()
  local now = self.played_s
  if self.source and #self.playing > 0 then now = now + self.source:tell("seconds") end
  return now
end

--- Mouth openness (0..1) now: the playing frame's envelope at the playing position.
---@return number
function Speaker:mouth()
  if not self.speaking or not self.playing[1] then return 0 end
  -- OpenAL lets go of a played buffer a little late: its position may already be in the next one
  local t, i = self.source:tell("seconds"), 1
  while self.playing[i + 1] and t >= self.playing[i].sd:getDuration() do
    t, i = t - self.playing[i].sd:getDuration(), i + 1
  end
  -- a buffer LÖVE released since the last `update` makes the position count from the next one
  -- while that buffer is still first here: never go back to a frame already left
  local reached = (self.mouth_frame or 0) - self.frames_played
  if i < reached and self.playing[reached] then t, i = 0, reached end
  self.mouth_frame = self.frames_played + i
  return voice.mouth_at(self.playing[i].frame, t)
end

--- Stop at once and drop every frame not played yet.
function Speaker:stop()
  if self.source then self.source:stop() end
  self.started = false
  for i = #self.playing, 1, -1 do self.playing[i] = nil end
  for i = #self.waiting, 1, -1 do self.waiting[i] = nil end
  if self.speaking then self:_finished("stopped") end
end

--- The player interrupts: cancel the reply being spoken (`barge_in`, so it keeps what was heard)
--- and stop playing. Returns true when there was a reply to cancel.
---@param client npcbridge.Client
---@return boolean
function Speaker:barge_in(client)
  local id = self.reply_id
  local was = self.speaking or #self.waiting > 0
  self:stop()
  if was and id ~= nil then
    client:cancel(id, { barge_in = true })
    return true
  end
  return false
end

-- Recorder ------------------------------------------------------------------------------------

---@class npcbridge.love_voice.Recorder
---@field device userdata|nil the RecordingDevice
---@field stream npcbridge.SpeechStream|nil the utterance being sent
local Recorder = {}
Recorder.__index = Recorder
M.Recorder = Recorder

---@class npcbridge.love_voice.RecorderOptions
---@field device userdata|nil default: the first of love.audio.getRecordingDevices()
---@field sample_rate integer|nil default 16000
---@field buffer_s number|nil seconds the device buffers between updates (default 1)
---@field chunk_s number|nil seconds of audio per `speech.chunk` (default 0.1: ten messages a
---                          second stay well under the server's message rate)

--- A push-to-talk recorder (16-bit mono).
---@param opts npcbridge.love_voice.RecorderOptions|nil
---@return npcbridge.love_voice.Recorder
function M.new_recorder(opts)
  opts = opts or {}
  return setmetatable({ opts = opts, sample_rate = opts.sample_rate or 16000, held = {}, held_bytes = 0 }, Recorder)
end

--- Start recording and open a chunked `speech` to `npc` (`opts`: a `speech`'s options and
--- callbacks). Returns the stream, or nil and an error value (no microphone, or it cannot start).
---@param client npcbridge.Client
---@param npc string
---@param player string
---@param opts npcbridge.SpeechOptions|nil
---@return npcbridge.SpeechStream|nil
---@return npcbridge.Error|nil
function Recorder:start(client, npc, player, opts)
  if self.stream then self:stop() end
  local device = self.opts.device or love().audio.getRecordingDevices()[1]
  if not device then return nil, errors.new("no_microphone", "no recording device") end
  local rate = self.sample_rate
  if not device:start(floor(rate * (self.opts.buffer_s or 1)), rate, 16, 1) then
    return nil, errors.new("no_microphone", "the recording device did not start")
  end
  local speech_opts = {}
  for k, v in pairs(opts or {}) do speech_opts[k] = v end
  speech_opts.format, speech_opts.sample_rate, speech_opts.channels = "pcm16", rate, 1
  local stream, err = client:speech_start(npc, player, speech_opts)
  if not stream then
    device:stop()
    return nil, err
  end
  self.device, self.stream = device, stream
  return stream
end

--- Send what was recorded since the last call as one chunk. Call once a frame while recording.
function Recorder:update()
  if not self.device then return end
  local sd = self.device:getData()
  if sd then self:send(sd) end
end

--- Add recorded SoundData (16-bit) to the open utterance; it goes out as a `speech.chunk` once
--- `chunk_s` seconds have gathered (the rest at `stop`).
---@param sd userdata SoundData
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function Recorder:send(sd)
  if not self.stream then return nil end
  local pcm = M.pcm16_of(sd)
  self.held[#self.held + 1] = pcm
  self.held_bytes = self.held_bytes + #pcm
  if self.held_bytes < self.sample_rate * 2 * (self.opts.chunk_s or 0.1) then return true end
  return self:_flush()
end

function Recorder:_flush()
  local pcm = table.concat(self.held)
  self.held, self.held_bytes = {}, 0
  return self.stream:chunk(pcm)
end

--- The player let go: send the rest, end the utterance, stop the device.
function Recorder:stop()
  if not self.stream then return end
  self:update()
  self:_flush()
  self.stream:finish()
  if self.device then self.device:stop() end
  self.device, self.stream = nil, nil
end

--- True while an utterance is being recorded.
---@return boolean
function Recorder:is_recording() return self.stream ~= nil end

return M

--- One method of `npcbridge.Client` per kind of request the game makes: `say` with its streaming
--- callbacks (text and voice), `cancel` (also a barge-in), `define_npc` (remembered and sent again after a reconnect), `ping`,
--- quests and barks. Each one is a `request` or a `send` (client_requests.lua). Methods mixed into
--- the client by `npcbridge` (init.lua).
---@class npcbridge.Client
local M = {}

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local errors = require(base .. "errors")

local pairs, ipairs, type, concat = pairs, ipairs, type, table.concat
local call = errors.call

--- Define (or redefine) an NPC for this connection. Remembered and sent again after a reconnect.
---@param npc string
---@param persona table {name, description?, personality?, speech_style?, knowledge?, examples?, model?, actions?, ...}
---@param callbacks npcbridge.Callbacks|nil on_reply gets the `ok`
---@return any|nil id
---@return npcbridge.Error|nil err
function M:define_npc(npc, persona, callbacks)
  if not self.npcs[npc] then self.npc_order[#self.npc_order + 1] = npc end
  self.npcs[npc] = persona
  return self:request("npc.define", { npc = npc, persona = persona }, callbacks)
end

---@class npcbridge.SayOptions
---@field context table|nil game state the persona may use
---@field urgency "realtime"|"normal"|"deep"|nil
---@field max_tokens integer|nil
---@field temperature number|nil
---@field stream boolean|nil
---@field voice boolean|table|nil true: speak with the persona's voice; false: no audio; a map
---                               {name, model?, speed?} overrides the persona's voice; nil: the
---                               persona's `voice.always` decides
---@field id any|nil choose the request id yourself
---@field fields table|nil extra message fields
---@field effects table|nil how the exchange moves the NPC's state: {trust?, affection?, mood?, ...}
---@field timeout number|nil
---@field on_start fun(msg: table)|nil `reply.start` {npc, model}
---@field on_delta fun(text: string, msg: table)|nil each `reply.delta`, in order
---@field on_audio fun(frame: table)|nil each `reply.audio` frame, in `seq` order: {seq, text,
---                                      format, sample_rate, channels, audio, duration_ms, mouth,
---                                      mouth_hz}; `audio` and `mouth` are msgpack.bin values (the
---                                      bytes are `frame.audio.data`; npcbridge.voice reads them)
---@field on_done fun(reply: table)|nil `reply.end` {text, finish, usage, cost_usd, timing, voice?,
---                                     actions?, emotes?, state?}; `reply.audio_frames` lists the frames
---@field on_error fun(err: npcbridge.Error)|nil the say failed (err.partial: text streamed before)
---@field on_action fun(action: table)|nil `action` {npc, name, args}
---@field on_emote fun(emote: table)|nil `emote` {npc, emote}

-- The optional fields a `say` (and a `speech`) may carry, copied from the options.
local TURN_FIELDS = { "id", "context", "urgency", "max_tokens", "temperature", "stream", "voice", "effects" }

-- The message fields of a turn: `opts.fields`, then the turn fields of `opts`.
function M._turn_fields(opts)
  local fields = {}
  for k, v in pairs(opts.fields or {}) do fields[k] = v end
  for _, k in ipairs(TURN_FIELDS) do
    if opts[k] ~= nil then fields[k] = opts[k] end
  end
  return fields
end

-- The request callbacks of a turn (a `say` or a `speech`): the reply's frames to the options'
-- callbacks. Audio frames are handed on in `seq` order: one that arrives early waits for those
-- before it (the server sends them in order; this keeps the promise whatever happens on the way).
function M._turn_callbacks(opts)
  local parts, frames, early, next_seq = {}, {}, {}, 0
  local function deliver(frame)
    frames[#frames + 1] = frame
    call(opts.on_audio, frame)
  end
  local function flush_early() -- at the end: frames still waiting for a missing one
    local rest = {}
    for seq, frame in pairs(early) do rest[#rest + 1] = { seq, frame } end
    table.sort(rest, function(a, b) return a[1] < b[1] end)
    for _, pair in ipairs(rest) do deliver(pair[2]) end
    early = {}
  end
  return {
    timeout = opts.timeout,
    on_message = function(msg)
      local t = msg.type
      if t == "reply.start" then
        call(opts.on_start, msg)
      elseif t == "reply.delta" then
        parts[#parts + 1] = msg.text
        call(opts.on_delta, msg.text, msg)
      elseif t == "reply.audio" then
        early[type(msg.seq) == "number" and msg.seq or next_seq] = msg
        while early[next_seq] do
          local frame = early[next_seq]
          early[next_seq], next_seq = nil, next_seq + 1
          deliver(frame)
        end
      elseif t == "transcript" then
        call(opts.on_transcript, msg.text, msg)
      elseif t == "action" then
        call(opts.on_action, msg)
      elseif t == "emote" then
        call(opts.on_emote, msg)
      end
    end,
    on_reply = function(msg)
      flush_early()
      msg.audio_frames = frames
      call(opts.on_done, msg)
    end,
    on_error = function(err)
      flush_early()
      if err.partial == nil and #parts > 0 then err.partial = concat(parts) end
      err.audio_frames = frames
      call(opts.on_error, err)
    end,
  }
end

--- Make an NPC talk to a player. Returns the request id (use it with `cancel`).
---@param npc string
---@param player string
---@param text string
---@param opts npcbridge.SayOptions|nil
---@return any|nil id
---@return npcbridge.Error|nil err
function M:say(npc, player, text, opts)
  opts = opts or {}
  local fields = M._turn_fields(opts)
  fields.npc, fields.player, fields.text = npc, player, text
  return self:request("say", fields, M._turn_callbacks(opts))
end

---@class npcbridge.CancelOptions
---@field barge_in boolean|nil the player interrupted the NPC: synthesis stops and the reply
---                            keeps the text of the audio already sent (what the player heard)

--- Stop a `say` (or a `speech`): the server ends it with `reply.end` finish "cancelled" (on_done
--- gets it).
---@param id any
---@param opts npcbridge.CancelOptions|nil
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function M:cancel(id, opts)
  local barge_in = opts and opts.barge_in and true or nil
  return self:send("cancel", { id = id, barge_in = barge_in })
end

--- Liveness check: `on_reply` gets the `pong`.
---@param callbacks npcbridge.Callbacks|nil
function M:ping(callbacks)
  return self:request("ping", nil, callbacks)
end

--- Generate a quest: `on_reply` gets the `quest` message.
---@param fields table {theme, difficulty, npc?, context?}
---@param callbacks npcbridge.Callbacks|nil
function M:generate_quest(fields, callbacks)
  return self:request("quest.generate", fields, callbacks)
end

--- Generate barks for several NPCs: `on_reply` gets the `barks` message.
---@param fields table {npcs = {{npc, context?}, ...}, context?}
---@param callbacks npcbridge.Callbacks|nil
function M:generate_barks(fields, callbacks)
  return self:request("barks.generate", fields, callbacks)
end

--- Tell NPCs what happened in the world (docs/state.md): `fields` = {text, npc | npcs | scene,
--- player?, witnesses?, importance?, effects?, react?, context?}. With `react` each witness's
--- line streams as a reply under "<id>/<n>": `opts.on_reaction` gets every frame of them
--- (`reply.start` {npc}, `reply.delta`, `reply.end`); `on_reply` gets the final `ok`
--- {npcs, reactions}.
---@param fields table
---@param opts table|nil {on_reaction?, on_reply?, on_error?, timeout?}
---@return any|nil id
---@return npcbridge.Error|nil err
function M:world_event(fields, opts)
  opts = opts or {}
  return self:request("world.event", fields, {
    on_reply = opts.on_reply,
    on_error = opts.on_error,
    timeout = opts.timeout,
    on_child = opts.on_reaction,
  })
end

return M

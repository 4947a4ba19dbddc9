--- One method of `npcbridge.Client` per kind of request the game makes: `say` with its streaming
--- callbacks, `cancel`, `define_npc` (remembered and sent again after a reconnect), `ping`,
--- quests and barks. Each one is a `request` or a `send` (client_requests.lua). Methods mixed into
--- the client by `npcbridge` (init.lua).
---@class npcbridge.Client
local M = {}

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local errors = require(base .. "errors")

local pairs, concat = pairs, table.concat
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
---@field id any|nil choose the request id yourself
---@field fields table|nil extra message fields
---@field effects table|nil how the exchange moves the NPC's state: {trust?, affection?, mood?, ...}
---@field timeout number|nil
---@field on_start fun(msg: table)|nil `reply.start` {npc, model}
---@field on_delta fun(text: string, msg: table)|nil each `reply.delta`, in order
---@field on_done fun(reply: table)|nil `reply.end` {text, finish, usage, cost_usd, timing, actions?, emotes?, state?}
---@field on_error fun(err: npcbridge.Error)|nil the say failed (err.partial: text streamed before)
---@field on_action fun(action: table)|nil `action` {npc, name, args}
---@field on_emote fun(emote: table)|nil `emote` {npc, emote}

--- Make an NPC talk to a player. Returns the request id (use it with `cancel`).
---@param npc string
---@param player string
---@param text string
---@param opts npcbridge.SayOptions|nil
---@return any|nil id
---@return npcbridge.Error|nil err
function M:say(npc, player, text, opts)
  opts = opts or {}
  local fields = {}
  for k, v in pairs(opts.fields or {}) do fields[k] = v end
  fields.npc, fields.player, fields.text = npc, player, text
  fields.id = opts.id
  fields.context, fields.urgency = opts.context, opts.urgency
  fields.max_tokens, fields.temperature, fields.stream = opts.max_tokens, opts.temperature, opts.stream
  fields.effects = opts.effects
  local parts = {}
  return self:request("say", fields, {
    timeout = opts.timeout,
    on_message = function(msg)
      local t = msg.type
      if t == "reply.start" then
        call(opts.on_start, msg)
      elseif t == "reply.delta" then
        parts[#parts + 1] = msg.text
        call(opts.on_delta, msg.text, msg)
      elseif t == "action" then
        call(opts.on_action, msg)
      elseif t == "emote" then
        call(opts.on_emote, msg)
      end
    end,
    on_reply = function(msg) call(opts.on_done, msg) end,
    on_error = function(err)
      if err.partial == nil and #parts > 0 then err.partial = concat(parts) end
      call(opts.on_error, err)
    end,
  })
end

--- Stop a `say`: the server ends it with `reply.end` finish "cancelled" (on_done gets it).
---@param id any
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function M:cancel(id)
  return self:send("cancel", { id = id })
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

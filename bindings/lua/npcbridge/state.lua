--- NPC state through a client (docs/state.md): `client.states:get(...)`, `:set`, `:nudge`,
--- `:watch`, `:unwatch`, the last state seen per NPC and player (`:of(npc, player)`), and
--- callbacks when it changes. Every `state` frame (an answer, or a watched threshold crossing
--- that belongs to no request) and every `reply.end` with `state` updates what is known:
---
---   client.states.on_change = function(npc, player, state, msg) ... end  -- values changed
---   client.states.on_crossed = function(npc, player, crossing, msg) ... end -- one per crossing
---
--- `player` is nil for the NPC's own mood (a state without a player); `state` is
--- `{mood, intensity, relationship = {trust, affection, familiarity}?}`.
---@class npcbridge.States
---@field client npcbridge.Client
---@field known table<string, table> "npc\0player" -> last state seen
---@field on_change fun(npc: string, player: string|nil, state: table, msg: table)|nil
---@field on_crossed fun(npc: string, player: string|nil, crossing: table, msg: table)|nil
local States = { _VERSION = "0.1.0" }
States.__index = States

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local errors = require(base .. "errors")

local setmetatable, ipairs, pairs, type = setmetatable, ipairs, pairs, type
local call = errors.call

local function key(npc, player) return npc .. "\0" .. (player or "") end

--- The state calls of `client`.
---@param client npcbridge.Client
---@return npcbridge.States
function States.new(client)
  return setmetatable({ client = client, known = {} }, States)
end

--- Send one `npc.state` (`op`: get, set, nudge, watch, unwatch); `on_reply` gets the `state`.
---@param npc string
---@param player string|nil nil: the NPC's own mood only
---@param op string
---@param fields table|nil {values?, watch?, names?}
---@param opts table|nil {id?, on_reply?, on_error?, timeout?}
function States:request(npc, player, op, fields, opts)
  local msg = { npc = npc, player = player, op = op, id = opts and opts.id }
  for k, v in pairs(fields or {}) do msg[k] = v end
  return self.client:request("npc.state", msg, opts)
end

--- The state now.
function States:get(npc, player, opts) return self:request(npc, player, "get", nil, opts) end

--- Set values: {mood?, intensity?, trust?, affection?, familiarity?}.
function States:set(npc, player, values, opts)
  return self:request(npc, player, "set", { values = values }, opts)
end

--- Add amounts to values (a mood with an intensity is felt).
function States:nudge(npc, player, values, opts)
  return self:request(npc, player, "nudge", { values = values }, opts)
end

--- Watch thresholds: { {key = "trust", below = -50, name = "hostile"}, {key = "mood"} }.
function States:watch(npc, player, watches, opts)
  return self:request(npc, player, "watch", { watch = watches }, opts)
end

--- Stop watching `names` of the pair (all of them when nil).
function States:unwatch(npc, player, names, opts)
  return self:request(npc, player, "unwatch", { names = names }, opts)
end

--- The last state seen for (npc, player), or nil.
---@param npc string
---@param player string|nil
---@return table|nil
function States:of(npc, player)
  return self.known[key(npc, player)]
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

--- Take the state a server frame carries (client_requests calls it for every frame).
--- `player` is the player of the request the frame answers (a `say`), when known.
---@param msg table
---@param player string|nil
function States:_seen(msg, player)
  local state
  if msg.type == "state" then
    state = { mood = msg.mood, intensity = msg.intensity, relationship = msg.relationship }
    player = msg.player
  elseif msg.type == "reply.end" and type(msg.state) == "table" then
    state = { mood = msg.state.mood, intensity = msg.state.intensity }
    -- a reply of a scene or a reaction names no player: only the NPC's own mood is known then
    if player ~= nil then state.relationship = msg.state.relationship end
  else
    return
  end
  local k = key(msg.npc, player)
  local before = self.known[k]
  self.known[k] = state
  if not same(before, state) then call(self.on_change, msg.npc, player, state, msg) end
  for _, crossing in ipairs(msg.crossed or {}) do
    call(self.on_crossed, msg.npc, player, crossing, msg)
  end
end

return States

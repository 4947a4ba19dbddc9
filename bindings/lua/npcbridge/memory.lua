--- What NPCs remember about players, through a client: `client.memory:add(...)`, `:forget(...)`,
--- `:query(...)`. Each call is a request (`on_reply` / `on_error` in `opts`).
---@class npcbridge.Memory
---@field client npcbridge.Client
local Memory = { _VERSION = "0.1.0" }
Memory.__index = Memory

local setmetatable = setmetatable

--- The memory calls of `client`.
---@param client npcbridge.Client
---@return npcbridge.Memory
function Memory.new(client)
  return setmetatable({ client = client }, Memory)
end

--- Remember something about a player (`client.memory:add(...)`); `on_reply` gets the `ok`.
---@param npc string
---@param player string|nil
---@param text string
---@param opts table|nil {importance?: 1..10, on_reply?, on_error?}
function Memory:add(npc, player, text, opts)
  opts = opts or {}
  return self.client:request("memory.add",
    { npc = npc, player = player, text = text, importance = opts.importance }, opts)
end

--- Erase what is remembered about a player (for one NPC, or all when npc is nil).
--- `on_reply` gets `ok` {removed}.
---@param player string
---@param npc string|nil
---@param opts table|nil {on_reply?, on_error?}
function Memory:forget(player, npc, opts)
  return self.client:request("memory.forget", { npc = npc, player = player }, opts)
end

--- Look up memories; `on_reply` gets `memory` {items = {{text, kind, importance, at}, ...}}.
---@param npc string
---@param player string
---@param opts table|nil {text?, limit?, on_reply?, on_error?}
function Memory:query(npc, player, opts)
  opts = opts or {}
  return self.client:request("memory.query",
    { npc = npc, player = player, text = opts.text, limit = opts.limit }, opts)
end

return Memory

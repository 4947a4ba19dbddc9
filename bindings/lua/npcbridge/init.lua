--- npcbridge client for Lua games: streaming LLM dialogue for NPCs over WebSocket + msgpack.
---
--- Pure Lua (5.1, 5.2, 5.3, 5.4, LuaJIT, LÖVE 11) with LuaSocket; LuaSec for wss://.
--- Non-blocking: call `client:update()` once per frame; callbacks run from inside it.
---
---   local npcbridge = require("npcbridge")
---   local client = npcbridge.new({ url = "ws://127.0.0.1:8765/", token = "secret" })
---   client:connect()
---   client:say("blacksmith", "player1", "Can you fix my sword?", {
---     on_delta = function(text) io.write(text) end,
---     on_done = function(reply) print() end,
---     on_error = function(err) print("error:", err.code, err.message) end,
---   })
---   -- in the game loop: client:update()
---
--- Protocol: docs/protocol.md (version 1). Errors are values: tables with `code`, `message`,
--- `retryable` and, when the server sent them, `id` and `retry_after_ms` (`tostring(err)` reads well).
---
--- The client is one class, `npcbridge.Client`, whose methods live by job in client_connection.lua
--- (connect, hello/welcome, reconnect, close), client_requests.lua (ids, sending, routing frames
--- to callbacks, timeouts), client_api.lua (`say`, `cancel`, `define_npc`, ...) and
--- client_voice.lua (`speech`, `speech_start`: the player's voice instead of text); this module
--- makes a client and runs its `update()`.
---@class npcbridge
local M = { _VERSION = "0.1.0", PROTOCOL = 1 }

local base = (...) and (...):gsub("%.init$", "") or "npcbridge"
local msgpack = require(base .. ".msgpack")
local websocket = require(base .. ".websocket")
local router = require(base .. ".router")
local errors = require(base .. ".errors")
local Memory = require(base .. ".memory")
local States = require(base .. ".state")
local connection = require(base .. ".client_connection")
local requests = require(base .. ".client_requests")
local api = require(base .. ".client_api")
local voice_api = require(base .. ".client_voice")
local voice = require(base .. ".voice")

local setmetatable, pairs, ipairs, assert, rawget = setmetatable, pairs, ipairs, assert, rawget
local G, LUA_VERSION = _G, _VERSION

M.msgpack = msgpack
M.websocket = websocket
M.router = router
M.Memory = Memory
M.States = States
M.voice = voice

M.Error = errors.Error
--- Make an error value.
---@param code string
---@param message string
---@param retryable boolean|nil
---@return npcbridge.Error
M.error = errors.new

---@class npcbridge.Options
---@field url string|nil server URL, default "ws://127.0.0.1:8765/"
---@field token string|nil sent in `hello`
---@field client_name string|nil the `client` field of `hello` (default names the Lua and this library)
---@field reconnect boolean|nil reconnect after an unexpected disconnect (default true)
---@field reconnect_initial number|nil first reconnect delay in seconds (default 0.5)
---@field reconnect_max number|nil largest reconnect delay in seconds (default 15)
---@field request_timeout number|nil seconds before a request with no answer fails with "timeout"
---                                  (default 120; nil/0 keeps the default, math.huge disables)
---@field queue_while_disconnected boolean|nil hold requests made while (re)connecting (default true)
---@field max_message number|nil largest message accepted from the server (default 16 MiB)
---@field websocket npcbridge.websocket.Options|nil options for the WebSocket layer
---@field on_connect fun(welcome: table)|nil after every successful `hello`/`welcome`
---@field on_disconnect fun(err: npcbridge.Error)|nil when a live connection ends
---@field on_error fun(err: npcbridge.Error)|nil connection-level errors and errors with no request
---@field on_message fun(msg: table)|nil server messages that belong to no request

---@class npcbridge.Client
---@field state "idle"|"connecting"|"ready"|"waiting"|"closed"
---@field welcome table|nil the last `welcome` message
---@field session string|nil
---@field memory npcbridge.Memory
---@field states npcbridge.States NPC state: requests, what is known, change callbacks
local Client = {}
Client.__index = Client
M.Client = Client

for _, part in ipairs({ connection, requests, api, voice_api }) do
  for name, fn in pairs(part) do
    assert(Client[name] == nil, "npcbridge.Client:" .. name .. " is defined twice")
    Client[name] = fn
  end
end

--- Create a client (it does not connect yet; see `connect`).
---@param opts npcbridge.Options|nil
---@return npcbridge.Client
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Client)
  self.url = opts.url or "ws://127.0.0.1:8765/"
  self.token = opts.token
  self.opts = opts
  self.client_name = opts.client_name or M.default_client_name()
  self.reconnect = opts.reconnect ~= false
  self.state = "idle"
  self.router = router.new() -- pending requests by id, and which frame ends each
  self.later = {} -- callbacks of failures found outside update(), run by the next update()
  self.queue = {} -- messages waiting for the connection
  self.npcs = {} -- npc id -> npc.define message (replayed after a reconnect)
  self.npc_order = {}
  self.next_id = 0
  self.attempts = 0
  self.on_connect, self.on_disconnect = opts.on_connect, opts.on_disconnect
  self.on_error, self.on_message = opts.on_error, opts.on_message
  self.memory = Memory.new(self)
  self.states = States.new(self)
  return self
end

--- "lua/5.4 npcbridge-lua/0.1.0", "luajit/2.1 ...", "love/11.4 ..." .
---@return string
function M.default_client_name()
  local engine
  local love = rawget(G, "love")
  local jit = rawget(G, "jit")
  if love and love.getVersion then
    local a, b = love.getVersion()
    engine = "love/" .. a .. "." .. b
  elseif jit then
    engine = "luajit/" .. (jit.version:match("(%d+%.%d+)") or "?")
  else
    engine = "lua/" .. (LUA_VERSION:match("(%d+%.%d+)") or "?")
  end
  return engine .. " npcbridge-lua/" .. M._VERSION
end

-- The `hello` that opens every connection.
function Client:_hello()
  return msgpack.map({ type = "hello", protocol = M.PROTOCOL, client = self.client_name, token = self.token })
end

-- Run `fn` at the start of the next update(): callbacks never run inside the game's own calls.
function Client:_later(fn)
  self.later[#self.later + 1] = fn
end

--- Do the pending network work and run callbacks. Call it once per frame; it never blocks for
--- long (non-blocking sockets; a bounded amount of reading per call).
function Client:update()
  local later = self.later
  if #later > 0 then
    self.later = {}
    for _, fn in ipairs(later) do fn() end
  end
  self:_reconnect_if_due()
  self:_pump()
  self:_expire()
end

return M

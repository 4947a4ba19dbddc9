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
---@class npcbridge
local M = { _VERSION = "0.1.0", PROTOCOL = 1 }

local base = (...) and (...):gsub("%.init$", "") or "npcbridge"
local msgpack = require(base .. ".msgpack")
local websocket = require(base .. ".websocket")
local router = require(base .. ".router")
local socket = require("socket")

M.msgpack = msgpack
M.websocket = websocket
M.router = router

local function now() return socket.gettime() end

-- ---------------------------------------------------------------------------------------------
-- Error values
-- ---------------------------------------------------------------------------------------------

---@class npcbridge.Error
---@field code string server codes (bad_request, unknown_npc, rate_limited, ...) or client codes:
---                  "disconnected", "not_connected", "timeout", "encode_error", "too_large", "closed",
---                  "bad_url", "resolve_failed"
---@field message string
---@field retryable boolean
---@field id any|nil the request id
---@field retry_after_ms integer|nil
---@field partial string|nil text streamed before a `say` failed

local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  return "npcbridge error " .. tostring(e.code) .. ": " .. tostring(e.message)
end
M.Error = Error

--- Make an error value.
---@param code string
---@param message string
---@param retryable boolean|nil
---@return npcbridge.Error
function M.error(code, message, retryable)
  return setmetatable({ code = code, message = message, retryable = retryable or false }, Error)
end

local function server_error(msg)
  local e = M.error(msg.code or "internal", msg.message or "", msg.retryable == true)
  e.id = msg.id
  e.retry_after_ms = msg.retry_after_ms
  return e
end

local function call(fn, ...)
  if fn then
    local ok, err = pcall(fn, ...)
    if not ok then
      io.stderr:write("npcbridge: a callback raised: ", tostring(err), "\n")
    end
  end
end

-- ---------------------------------------------------------------------------------------------
-- Client
-- ---------------------------------------------------------------------------------------------

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
local Client = {}
Client.__index = Client
M.Client = Client

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
  self.memory = setmetatable({ client = self }, M.Memory)
  return self
end

--- "lua/5.4 npcbridge-lua/0.1.0", "luajit/2.1 ...", "love/11.4 ..." .
---@return string
function M.default_client_name()
  local engine
  local love = rawget(_G, "love")
  if love and love.getVersion then
    local a, b = love.getVersion()
    engine = "love/" .. a .. "." .. b
  elseif rawget(_G, "jit") then
    engine = "luajit/" .. (jit.version:match("(%d+%.%d+)") or "?")
  else
    engine = "lua/" .. (_VERSION:match("(%d+%.%d+)") or "?")
  end
  return engine .. " npcbridge-lua/" .. M._VERSION
end

-- The address to connect TCP to: the host itself when it is an IP address, else the first IPv4
-- (then IPv6) address the resolver gives. This is the lookup that blocks.
local function resolve(host)
  if host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true) then return host end
  local dns = socket.dns
  if dns.getaddrinfo then
    local list = dns.getaddrinfo(host)
    if type(list) == "table" then
      for _, family in ipairs({ "inet", "inet6" }) do
        for _, a in ipairs(list) do
          if a.family == family and a.addr then return a.addr end
        end
      end
    end
  end
  local ip, err = dns.toip(host)
  if ip then return ip end
  return nil, "cannot resolve " .. host .. ": " .. tostring(err)
end

--- Open the connection. `on_connect` runs from `update()` once `welcome` arrives.
--- The one blocking call of the client: it resolves the URL's host name (an IP address needs no
--- lookup); every reconnect goes to the address found here. A URL that can never work
--- (`bad_url`) or a name that does not resolve (`resolve_failed`) closes the client without
--- retrying: `on_error`, and the `on_error` of every waiting request, get the error from the
--- next `update()` (a `wss://` URL without LuaSec installed is a `bad_url` too); call
--- `connect()` again to retry.
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function Client:connect()
  if self.state == "connecting" or self.state == "ready" then return true end
  self.closing = false
  local parts, perr = websocket.parse_url(self.url)
  local e
  if not parts then
    e = M.error("bad_url", tostring(perr) .. ": " .. tostring(self.url), false)
  elseif parts.secure and not pcall(require, "ssl") then
    e = M.error("bad_url", "wss:// needs LuaSec (module 'ssl'), which is not installed", false)
  else
    local addr, rerr = resolve(parts.host)
    if addr then
      self.address = addr
      return self:_open()
    end
    e = M.error("resolve_failed", rerr, true)
  end
  self.state = "closed"
  self.reconnect_at = nil
  local reqs = self.router:take_all()
  self.queue = {}
  self:_later(function()
    call(self.on_error, e)
    self:_fail_requests(reqs, e)
  end)
  return nil, e
end

-- Run `fn` at the start of the next update(): callbacks never run inside the game's own calls.
function Client:_later(fn)
  self.later[#self.later + 1] = fn
end

-- Open a WebSocket to the address resolved by connect() (non-blocking).
function Client:_open()
  local wopts = {}
  for k, v in pairs(self.opts.websocket or {}) do wopts[k] = v end
  wopts.max_message = wopts.max_message or self.opts.max_message
  -- notice a server that vanished without closing TCP (the server pings too, every 20 s)
  if wopts.ping_interval == nil then wopts.ping_interval = 25 end
  if wopts.ping_timeout == nil then wopts.ping_timeout = 15 end
  wopts.address = self.address
  self.ws = websocket.new(self.url, wopts)
  local ok, err = self.ws:connect()
  if not ok then
    local e = M.error("disconnected", err, true)
    self:_lost(e)
    return nil, e
  end
  self.state = "connecting"
  self.hello_sent = false
  return true
end

--- Is the connection up (welcome received)?
---@return boolean
function Client:is_ready() return self.state == "ready" end

--- Close the connection for good (no reconnect). Requests in flight fail with "closed".
--- Sends the WebSocket close frame, then waits up to `wait` seconds (default 0: not at all) for
--- the server's answer before dropping the TCP connection. Meant for shutdown (e.g. `love.quit`).
---@param wait number|nil
function Client:close(wait)
  self.closing = true
  self.reconnect_at = nil
  local ws = self.ws
  if ws and ws.state ~= "closed" then
    ws:close(1000, "bye")
    local deadline = now() + (wait or 0)
    while ws.state ~= "closed" and now() < deadline do
      ws:update()
      socket.select(nil, nil, 0.005)
    end
    if ws.state ~= "closed" then ws:abort() end
  end
  self.ws = nil
  self:_fail_all(M.error("closed", "the client was closed", false))
  self.state = "closed"
end

function Client:_new_id()
  self.next_id = self.next_id + 1
  return self.next_id
end

function Client:_send_now(msg)
  local bytes, err = msgpack.encode(msg)
  if not bytes then return nil, M.error("encode_error", err, false) end
  local limit = self.welcome and self.welcome.limits and self.welcome.limits.max_message_bytes
  if type(limit) == "number" and #bytes > limit then
    return nil, M.error("too_large", "message of " .. #bytes .. " bytes is over the server's limit of " .. limit, false)
  end
  local ok, werr = self.ws:send(bytes, "binary")
  if not ok then return nil, M.error("disconnected", werr, true) end
  return true
end

-- Send now when ready; queue while connecting; else fail.
function Client:_dispatch(msg)
  if self.state == "ready" then return self:_send_now(msg) end
  if self.state ~= "closed" and self.opts.queue_while_disconnected ~= false and not self.closing then
    self.queue[#self.queue + 1] = msg
    return true
  end
  return nil, M.error("not_connected", "not connected (call connect())", true)
end

---@class npcbridge.Callbacks
---@field on_reply fun(msg: table)|nil the answer that ends the request (`ok`, `memory`, `quest`, `pong`, ...)
---@field on_message fun(msg: table)|nil every message carrying this request's id
---@field on_error fun(err: npcbridge.Error)|nil the request failed (server `error` or client-side)
---@field timeout number|nil seconds (overrides the client's request_timeout)

--- Send any request and route the answers by id. Returns the id, or nil and an error value (which
--- `on_error` also gets, from the next `update()`).
--- The request ends with the first message carrying its id that is not a stream message
--- (`reply.start`, `reply.delta`, `emote`, `action`): `on_reply` gets it, or `on_error` when it is
--- an `error` (a refusal ends it only when it refused this request: see npcbridge.router).
--- Use it for `quest.generate`, `barks.generate` and messages added later.
---@param mtype string
---@param fields table|nil
---@param callbacks npcbridge.Callbacks|nil
---@return any|nil id
---@return npcbridge.Error|nil err
function Client:request(mtype, fields, callbacks)
  local msg = msgpack.map({})
  for k, v in pairs(fields or {}) do msg[k] = v end
  msg.type = mtype
  if msg.id == nil then msg.id = self:_new_id() end
  callbacks = callbacks or {}
  if self.router:get(msg.id) then
    return self:_refuse(callbacks.on_error, M.error("bad_request", "id " .. tostring(msg.id) .. " is in flight", false))
  end
  local timeout = callbacks.timeout or self.opts.request_timeout
  if not timeout or timeout <= 0 then timeout = 120 end
  self.router:add(msg.id, mtype, { cb = callbacks, deadline = now() + timeout, msg = msg })
  local ok, err = self:_dispatch(msg)
  if not ok then
    self.router:remove(msg.id)
    err.id = msg.id
    return self:_refuse(callbacks.on_error, err)
  end
  return msg.id
end

-- A request that could not be sent: its error goes to `on_error` (from the next update()) and
-- is returned.
function Client:_refuse(on_error, err)
  self:_later(function() call(on_error, err) end)
  return nil, err
end

--- Send a message that expects no answer (no id added). A failure is returned and reaches the
--- client's `on_error` (from the next `update()`).
---@param mtype string
---@param fields table|nil
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function Client:send(mtype, fields)
  local msg = msgpack.map({})
  for k, v in pairs(fields or {}) do msg[k] = v end
  msg.type = mtype
  local ok, err = self:_dispatch(msg)
  if not ok then return self:_refuse(self.on_error, err) end
  return ok
end

--- Define (or redefine) an NPC for this connection. Remembered and sent again after a reconnect.
---@param npc string
---@param persona table {name, description?, personality?, speech_style?, knowledge?, examples?, model?, actions?, ...}
---@param callbacks npcbridge.Callbacks|nil on_reply gets the `ok`
---@return any|nil id
---@return npcbridge.Error|nil err
function Client:define_npc(npc, persona, callbacks)
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
---@field timeout number|nil
---@field on_start fun(msg: table)|nil `reply.start` {npc, model}
---@field on_delta fun(text: string, msg: table)|nil each `reply.delta`, in order
---@field on_done fun(reply: table)|nil `reply.end` {text, finish, usage, cost_usd, timing, actions?, emotes?}
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
function Client:say(npc, player, text, opts)
  opts = opts or {}
  local fields = {}
  for k, v in pairs(opts.fields or {}) do fields[k] = v end
  fields.npc, fields.player, fields.text = npc, player, text
  fields.id = opts.id
  fields.context, fields.urgency = opts.context, opts.urgency
  fields.max_tokens, fields.temperature, fields.stream = opts.max_tokens, opts.temperature, opts.stream
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
      if err.partial == nil and #parts > 0 then err.partial = table.concat(parts) end
      call(opts.on_error, err)
    end,
  })
end

--- Stop a `say`: the server ends it with `reply.end` finish "cancelled" (on_done gets it).
---@param id any
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function Client:cancel(id)
  return self:send("cancel", { id = id })
end

--- Liveness check: `on_reply` gets the `pong`.
---@param callbacks npcbridge.Callbacks|nil
function Client:ping(callbacks)
  return self:request("ping", nil, callbacks)
end

--- Generate a quest: `on_reply` gets the `quest` message.
---@param fields table {theme, difficulty, npc?, context?}
---@param callbacks npcbridge.Callbacks|nil
function Client:generate_quest(fields, callbacks)
  return self:request("quest.generate", fields, callbacks)
end

--- Generate barks for several NPCs: `on_reply` gets the `barks` message.
---@param fields table {npcs = {{npc, context?}, ...}, context?}
---@param callbacks npcbridge.Callbacks|nil
function Client:generate_barks(fields, callbacks)
  return self:request("barks.generate", fields, callbacks)
end

-- Memory ----------------------------------------------------------------------------------------

---@class npcbridge.Memory
local Memory = {}
Memory.__index = Memory
M.Memory = Memory

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

-- Incoming ----------------------------------------------------------------------------------

function Client:_on_server_message(msg)
  local t = msg.type
  if self.state == "connecting" then
    if t == "welcome" then
      self.welcome = msg
      self.session = msg.session
      self.state = "ready"
      self.attempts = 0
      self:_after_welcome()
      call(self.on_connect, msg)
    elseif t == "error" then
      local e = server_error(msg)
      self.fatal = (e.code == "unauthorized" or e.code == "unsupported_protocol") and e or nil
      call(self.on_error, e)
    end
    return
  end
  local req, what = self.router:route(msg)
  if not req then -- stray: an error that touches no request, or a frame nobody waits for
    if t == "error" then
      call(self.on_error, server_error(msg))
    else
      call(self.on_message, msg)
    end
    return
  end
  if what == "opened" then
    -- a scene reply: its frames go to the client's on_message (errors to on_error), like any
    -- frame with an id of its own; its parent (the scene.say) waits for scene.done
    req.cb = {
      on_message = function(m) call(self.on_message, m) end,
      on_error = function(e) call(self.on_error, e) end,
      timeout = req.parent.cb and req.parent.cb.timeout,
    }
  end
  -- every frame of a request keeps it, and the scene it belongs to, from timing out
  local r = req
  while r do
    r.deadline = now() + ((r.cb and r.cb.timeout) or self.opts.request_timeout or 120)
    r = r.parent
  end
  if what == "end" and t == "error" then
    local e = server_error(msg)
    if req.partial_end then e.partial = req.partial_end.text end
    call(req.cb.on_error, e)
    return
  end
  call(req.cb.on_message, msg)
  if what == "end" then call(req.cb.on_reply, msg) end
end

function Client:_after_welcome()
  -- NPCs defined on an earlier connection are defined again (a restarted server forgot them)
  local pending = {}
  for _, npc in ipairs(self.npc_order) do pending[npc] = true end
  for _, msg in ipairs(self.queue) do
    if msg.type == "npc.define" then pending[msg.npc] = nil end
  end
  for _, npc in ipairs(self.npc_order) do
    if pending[npc] then
      local id = self:_new_id()
      self.router:add(id, "npc.define", {
        deadline = now() + (self.opts.request_timeout or 120),
        cb = { on_error = function(e) call(self.on_error, e) end },
      })
      self:_send_now(msgpack.map({ type = "npc.define", id = id, npc = npc, persona = self.npcs[npc] }))
    end
  end
  local queue = self.queue
  self.queue = {}
  for _, msg in ipairs(queue) do
    local ok, err = self:_send_now(msg)
    if not ok then
      local req = msg.id ~= nil and self.router:get(msg.id)
      if req then
        self.router:remove(msg.id)
        err.id = msg.id
        call(req.cb.on_error, err)
      end
    end
  end
end

-- Each request (id -> record) fails with a copy of `err` carrying its id.
function Client:_fail_requests(reqs, err)
  for id, req in pairs(reqs) do
    local e = setmetatable({}, Error)
    for k, v in pairs(err) do e[k] = v end
    e.id = id
    call(req.cb.on_error, e)
  end
end

function Client:_fail_all(err)
  local reqs = self.router:take_all()
  self.queue = {}
  self:_fail_requests(reqs, err)
end

-- The connection ended (or never opened): fail what was in flight, plan a reconnect.
function Client:_lost(err)
  local was_ready = self.state == "ready"
  self.ws = nil
  self.welcome = nil
  -- requests already sent are lost with the connection; those still queued wait for the next one
  local queued = {}
  for _, msg in ipairs(self.queue) do if msg.id ~= nil then queued[msg.id] = true end end
  local lost = {}
  for id, req in pairs(self.router.requests) do
    if not queued[id] then lost[#lost + 1] = req end
  end
  for _, req in ipairs(lost) do
    self.router:remove(req.id)
    local e = M.error(err.code, err.message, err.retryable)
    e.id = req.id
    if req.partial_end then e.partial = req.partial_end.text end
    call(req.cb.on_error, e)
  end
  if self.closing then
    self.state = "closed"
    return
  end
  if self.fatal then
    self.state = "closed"
    local fatal = self.fatal
    self.fatal = nil
    self:_fail_all(fatal)
    if was_ready then call(self.on_disconnect, fatal) end
    return
  end
  if was_ready then call(self.on_disconnect, err) end
  if self.reconnect then
    self.attempts = self.attempts + 1
    local initial = self.opts.reconnect_initial or 0.5
    local max = self.opts.reconnect_max or 15
    local delay = initial * 2 ^ (self.attempts - 1)
    if delay > max then delay = max end
    delay = delay * (0.8 + 0.4 * math.random()) -- jitter: clients restarted together spread out
    self.reconnect_at = now() + delay
    self.state = "waiting"
  else
    self.state = "closed"
    self:_fail_all(M.error("disconnected", err.message, true))
  end
end

--- Do the pending network work and run callbacks. Call it once per frame; it never blocks for
--- long (non-blocking sockets; a bounded amount of reading per call).
function Client:update()
  local later = self.later
  if #later > 0 then
    self.later = {}
    for _, fn in ipairs(later) do fn() end
  end
  local t = now()
  if self.state == "waiting" and self.reconnect_at and t >= self.reconnect_at then
    self.reconnect_at = nil
    self:_open() -- to the address connect() resolved: no lookup inside update()
  end
  local ws = self.ws
  if ws then
    for _, ev in ipairs(ws:update()) do
      if ev.type == "open" then
        if not self.hello_sent then
          self.hello_sent = true
          local hello = msgpack.map({ type = "hello", protocol = M.PROTOCOL, client = self.client_name, token = self.token })
          local bytes = assert(msgpack.encode(hello))
          ws:send(bytes, "binary")
        end
      elseif ev.type == "message" then
        if ev.kind == "binary" then
          local msg, err = msgpack.decode(ev.data)
          if msgpack.is_map(msg) and type(msg.type) == "string" then
            self:_on_server_message(msg)
          else
            call(self.on_error, M.error("bad_message", "undecodable server message: " .. tostring(err or "not a map with a type"), false))
          end
        else
          call(self.on_error, M.error("bad_message", "the server sent a text frame", false))
        end
      elseif ev.type == "close" then
        local why = ev.error or ("closed by the server (" .. tostring(ev.code) .. (ev.reason ~= "" and (" " .. ev.reason) or "") .. ")")
        local e = M.error("disconnected", why, true)
        e.close_code = ev.code
        if self.fatal == nil and (ev.code == 4001 or ev.code == 4002) then
          self.fatal = M.error(ev.code == 4001 and "unauthorized" or "unsupported_protocol", why, false)
        end
        self:_lost(e)
        break
      end
    end
  end
  -- request timeouts
  t = now()
  local expired
  for _, req in pairs(self.router.requests) do
    if t > req.deadline then
      expired = expired or {}
      expired[#expired + 1] = req
    end
  end
  if expired then
    for _, req in ipairs(expired) do
      self.router:remove(req.id)
      for i = #self.queue, 1, -1 do
        if self.queue[i].id == req.id then table.remove(self.queue, i) end
      end
      local e = M.error("timeout", "no answer to " .. req.type .. " in time", true)
      e.id = req.id
      call(req.cb.on_error, e)
    end
  end
end

return M

--- The connection of `npcbridge.Client`: connect (the one host lookup), hello/welcome, what
--- arrives from the WebSocket, losing the connection and reconnecting with backoff, close.
--- Methods mixed into the client by `npcbridge` (init.lua).
---@class npcbridge.Client
local M = {}

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local msgpack = require(base .. "msgpack")
local websocket = require(base .. "websocket")
local url = require(base .. "url")
local errors = require(base .. "errors")
local random = require(base .. "random")
local socket = require("socket")

local pairs, ipairs, pcall, require, tostring, assert, type = pairs, ipairs, pcall, require, tostring, assert, type
local byte = string.byte
local new_error, call = errors.new, errors.call

local function now() return socket.gettime() end

-- A number in [0, 1) from npcbridge.random: the game's math.random is never advanced.
local function fraction()
  local a, b = byte(random.bytes(2), 1, 2)
  return (a * 256 + b) / 65536
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
function M:connect()
  if self.state == "connecting" or self.state == "ready" then return true end
  self.closing = false
  local parts, perr = url.parse_url(self.url)
  local e
  if not parts then
    e = new_error("bad_url", tostring(perr) .. ": " .. tostring(self.url), false)
  elseif parts.secure and not pcall(require, "ssl") then
    e = new_error("bad_url", "wss:// needs LuaSec (module 'ssl'), which is not installed", false)
  else
    local addr, rerr = url.resolve(parts.host)
    if addr then
      self.address = addr
      return self:_open()
    end
    e = new_error("resolve_failed", rerr, true)
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

-- Open a WebSocket to the address resolved by connect() (non-blocking).
function M:_open()
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
    local e = new_error("disconnected", err, true)
    self:_lost(e)
    return nil, e
  end
  self.state = "connecting"
  self.hello_sent = false
  return true
end

--- Is the connection up (welcome received)?
---@return boolean
function M:is_ready() return self.state == "ready" end

--- Close the connection for good (no reconnect). Requests in flight fail with "closed".
--- Sends the WebSocket close frame, then waits up to `wait` seconds (default 0: not at all) for
--- the server's answer before dropping the TCP connection. Meant for shutdown (e.g. `love.quit`).
---@param wait number|nil
function M:close(wait)
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
  self:_fail_all(new_error("closed", "the client was closed", false))
  self.state = "closed"
end

-- Reconnect when the backoff delay is over (to the address connect() resolved: no lookup here).
function M:_reconnect_if_due()
  if self.state == "waiting" and self.reconnect_at and now() >= self.reconnect_at then
    self.reconnect_at = nil
    self:_open()
  end
end

-- Act on what the WebSocket reports: send hello once open, decode messages, notice the end.
function M:_pump()
  local ws = self.ws
  if not ws then return end
  for _, ev in ipairs(ws:update()) do
    if ev.type == "open" then
      if not self.hello_sent then
        self.hello_sent = true
        local bytes = assert(msgpack.encode(self:_hello()))
        ws:send(bytes, "binary")
      end
    elseif ev.type == "message" then
      if ev.kind == "binary" then
        local msg, err = msgpack.decode(ev.data)
        if msgpack.is_map(msg) and type(msg.type) == "string" then
          self:_on_server_message(msg)
        else
          call(self.on_error, new_error("bad_message", "undecodable server message: " .. tostring(err or "not a map with a type"), false))
        end
      else
        call(self.on_error, new_error("bad_message", "the server sent a text frame", false))
      end
    elseif ev.type == "close" then
      local why = ev.error or ("closed by the server (" .. tostring(ev.code) .. (ev.reason ~= "" and (" " .. ev.reason) or "") .. ")")
      local e = new_error("disconnected", why, true)
      e.close_code = ev.code
      if self.fatal == nil and (ev.code == 4001 or ev.code == 4002) then
        self.fatal = new_error(ev.code == 4001 and "unauthorized" or "unsupported_protocol", why, false)
      end
      self:_lost(e)
      break
    end
  end
end

-- One decoded server message: the handshake's answer while connecting, else a request's frame.
function M:_on_server_message(msg)
  if self.state ~= "connecting" then return self:_route(msg) end
  local t = msg.type
  if t == "welcome" then
    self.welcome = msg
    self.session = msg.session
    self.state = "ready"
    self.attempts = 0
    self:_after_welcome()
    call(self.on_connect, msg)
  elseif t == "error" then
    local e = errors.from_server(msg)
    self.fatal = (e.code == "unauthorized" or e.code == "unsupported_protocol") and e or nil
    call(self.on_error, e)
  end
end

-- A fresh connection: define the NPCs again, then send what waited in the queue.
function M:_after_welcome()
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
        deadline = now() + self:_timeout(nil),
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

-- The connection ended (or never opened): fail what was in flight, plan a reconnect.
function M:_lost(err)
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
    local e = new_error(err.code, err.message, err.retryable)
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
    delay = delay * (0.8 + 0.4 * fraction()) -- jitter: clients restarted together spread out
    self.reconnect_at = now() + delay
    self.state = "waiting"
  else
    self.state = "closed"
    self:_fail_all(new_error("disconnected", err.message, true))
  end
end

return M

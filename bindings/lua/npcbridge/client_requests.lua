--- Request bookkeeping of `npcbridge.Client`: ids, sending or queueing, routing the server's
--- frames to each request's callbacks (which frame ends which request is `npcbridge.router`'s
--- rule), failing requests, timeouts. Methods mixed into the client by `npcbridge` (init.lua).
---@class npcbridge.Client
local M = {}

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local msgpack = require(base .. "msgpack")
local errors = require(base .. "errors")
local socket = require("socket")

local pairs, ipairs, type, tostring = pairs, ipairs, type, tostring
local remove = table.remove
local new_error, call = errors.new, errors.call

local function now() return socket.gettime() end

-- Seconds a request may wait for its next frame: its own `timeout`, else the client's
-- `request_timeout`; nil or 0 keep the default of 120.
function M:_timeout(callbacks)
  local timeout = callbacks and callbacks.timeout or self.opts.request_timeout
  if not timeout or timeout <= 0 then timeout = 120 end
  return timeout
end

-- The next request id the client chooses (integers from 1; a game may choose its own).
function M:_new_id()
  self.next_id = self.next_id + 1
  return self.next_id
end

-- Encode and send on the open connection; nil and an error value when that cannot be done.
function M:_send_now(msg)
  local bytes, err = msgpack.encode(msg)
  if not bytes then return nil, new_error("encode_error", err, false) end
  local limit = self.welcome and self.welcome.limits and self.welcome.limits.max_message_bytes
  if type(limit) == "number" and #bytes > limit then
    return nil, new_error("too_large", "message of " .. #bytes .. " bytes is over the server's limit of " .. limit, false)
  end
  local ok, werr = self.ws:send(bytes, "binary")
  if not ok then return nil, new_error("disconnected", werr, true) end
  return true
end

-- Send now when ready; queue while connecting; else fail.
function M:_dispatch(msg)
  if self.state == "ready" then return self:_send_now(msg) end
  if self.state ~= "closed" and self.opts.queue_while_disconnected ~= false and not self.closing then
    self.queue[#self.queue + 1] = msg
    return true
  end
  return nil, new_error("not_connected", "not connected (call connect())", true)
end

---@class npcbridge.Callbacks
---@field on_reply fun(msg: table)|nil the answer that ends the request (`ok`, `memory`, `quest`, `pong`, ...)
---@field on_message fun(msg: table)|nil every message carrying this request's id
---@field on_child fun(msg: table)|nil every frame of the replies streamed under the request (`parent`)
---@field on_error fun(err: npcbridge.Error)|nil the request failed (server `error` or client-side)
---@field timeout number|nil seconds (overrides the client's request_timeout)

--- Send any request and route the answers by id. Returns the id, or nil and an error value (which
--- `on_error` also gets, from the next `update()`).
--- The request ends with the first message carrying its id that is not a stream message
--- (`reply.start`, `reply.delta`, `reply.audio`, `emote`, `action`, `transcript`): `on_reply` gets it, or `on_error` when it is
--- an `error` (a refusal ends it only when it refused this request: see npcbridge.router).
--- Use it for `quest.generate`, `barks.generate` and messages added later.
---@param mtype string
---@param fields table|nil
---@param callbacks npcbridge.Callbacks|nil
---@return any|nil id
---@return npcbridge.Error|nil err
function M:request(mtype, fields, callbacks)
  local msg = msgpack.map({})
  for k, v in pairs(fields or {}) do msg[k] = v end
  msg.type = mtype
  if msg.id == nil then msg.id = self:_new_id() end
  callbacks = callbacks or {}
  if self.router:get(msg.id) then
    return self:_refuse(callbacks.on_error, new_error("bad_request", "id " .. tostring(msg.id) .. " is in flight", false))
  end
  self.router:add(msg.id, mtype, { cb = callbacks, deadline = now() + self:_timeout(callbacks), msg = msg })
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
function M:_refuse(on_error, err)
  self:_later(function() call(on_error, err) end)
  return nil, err
end

--- Send a message that expects no answer (no id added). A failure is returned and reaches the
--- client's `on_error` (from the next `update()`).
---@param mtype string
---@param fields table|nil
---@return boolean|nil ok
---@return npcbridge.Error|nil err
function M:send(mtype, fields)
  local msg = msgpack.map({})
  for k, v in pairs(fields or {}) do msg[k] = v end
  msg.type = mtype
  local ok, err = self:_dispatch(msg)
  if not ok then return self:_refuse(self.on_error, err) end
  return ok
end

-- A server message on a ready connection: to the callbacks of the request it belongs to, else
-- to the client's on_error (an error) or on_message.
function M:_route(msg)
  local t = msg.type
  if t == "state" or t == "reply.end" then
    -- what is known of NPC state (npcbridge.state): the reply's player is its say's
    local sent = msg.id ~= nil and self.router:get(msg.id)
    self.states:_seen(msg, sent and sent.msg and sent.msg.player or nil)
  end
  local req, what = self.router:route(msg)
  if not req then -- stray: an error that touches no request, or a frame nobody waits for
    if t == "error" then
      call(self.on_error, errors.from_server(msg))
    else
      call(self.on_message, msg)
    end
    return
  end
  if what == "opened" then
    -- a scene reply or a world event's reaction: its frames go to its parent's `on_child`
    -- callbacks when it has them (world_event), else to the client's on_message (errors to
    -- on_error), like any frame with an id of its own; the parent waits for its own answer
    local child = req.parent.cb and req.parent.cb.on_child
    req.cb = {
      on_message = function(m) call(child or self.on_message, m) end,
      on_error = function(e) call(self.on_error, e) end,
      timeout = req.parent.cb and req.parent.cb.timeout,
    }
  end
  -- every frame of a request keeps it, and the scene it belongs to, from timing out
  local r = req
  while r do
    r.deadline = now() + self:_timeout(r.cb)
    r = r.parent
  end
  if what == "end" and t == "error" then
    local e = errors.from_server(msg)
    if req.partial_end then e.partial = req.partial_end.text end
    call(req.cb.on_error, e)
    return
  end
  call(req.cb.on_message, msg)
  if what == "end" then call(req.cb.on_reply, msg) end
end

-- Each request (id -> record) fails with a copy of `err` carrying its id.
function M:_fail_requests(reqs, err)
  for id, req in pairs(reqs) do
    call(req.cb.on_error, errors.with_id(err, id))
  end
end

-- Every request fails with `err`; nothing stays queued.
function M:_fail_all(err)
  local reqs = self.router:take_all()
  self.queue = {}
  self:_fail_requests(reqs, err)
end

-- Requests whose deadline passed fail with "timeout" (and leave the queue if still there).
function M:_expire()
  local t = now()
  local expired
  for _, req in pairs(self.router.requests) do
    if t > req.deadline then
      expired = expired or {}
      expired[#expired + 1] = req
    end
  end
  if not expired then return end
  for _, req in ipairs(expired) do
    self.router:remove(req.id)
    for i = #self.queue, 1, -1 do
      if self.queue[i].id == req.id then remove(self.queue, i) end
    end
    local e = new_error("timeout", "no answer to " .. req.type .. " in time", true)
    e.id = req.id
    call(req.cb.on_error, e)
  end
end

return M

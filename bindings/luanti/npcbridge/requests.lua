--- The requests in flight and the routing of server messages to their callbacks, by `id`, with
--- the protocol's refusal rule (docs/protocol.md, "Errors"). Knows nothing of HTTP.
---
--- Callbacks of a `say`: `on_delta(text, so_far, msg)`, `on_emote(emote, msg)`,
--- `on_action(name, args, msg)`, `on_done(text, msg)` (the `reply.end`; `msg.finish` says why it
--- ended: "stop", "length", "cancelled", ...), `on_error(err)`. Other requests: `on_done(answer,
--- msg)` and `on_error(err)`. An error value is `{code, message, retryable, id, retry_after_ms,
--- partial}` (`partial`: the text streamed before a reply failed).
local Requests = {}
Requests.__index = Requests

--- A router; `guard(fn, ...)` calls a game callback without letting it break the mod;
--- `on_general_error(err)` receives errors that end no request.
function Requests.new(guard, on_general_error)
  return setmetatable({ pending = {}, guard = guard, on_general_error = on_general_error,
    count = 0 }, Requests)
end

--- An error value.
function Requests.error(code, message, retryable, id)
  return { code = code, message = message, retryable = retryable == true, id = id }
end

--- Remember a request sent as a message of `mtype` under `id`.
function Requests:add(id, mtype, callbacks)
  self.pending[id] = { type = mtype, callbacks = callbacks or {}, parts = {}, framed = false }
  self.count = self.count + 1
end

--- Whether `id` is in flight.
function Requests:has(id)
  return self.pending[id] ~= nil
end

local function finish(self, id)
  if self.pending[id] then
    self.pending[id] = nil
    self.count = self.count - 1
  end
end

--- End the request `id` with the error `err` (the error's `id` is set to it).
function Requests:fail(id, err)
  local req = self.pending[id]
  if not req then
    return
  end
  finish(self, id)
  err.id = id
  if #req.parts > 0 and err.partial == nil then
    err.partial = table.concat(req.parts)
  end
  self.guard(req.callbacks.on_error, err)
end

--- End every request in flight with an error of `code` (the session behind them is gone).
function Requests:fail_all(code, message, retryable)
  local ids = {}
  for id in pairs(self.pending) do
    ids[#ids + 1] = id
  end
  for _, id in ipairs(ids) do
    self:fail(id, Requests.error(code, message, retryable))
  end
end

-- the field of an answer message that is its value for `on_done`
local ANSWER_FIELD = { memory = "items", quest = "quest", barks = "results" }

local function route_error(self, msg)
  local req = msg.id ~= nil and self.pending[msg.id] or nil
  local err = Requests.error(msg.code or "internal", msg.message or "", msg.retryable, msg.id)
  err.retry_after_ms, err.refused = msg.retry_after_ms, msg.refused
  -- a refusal ends a request only when it refuses what was sent under that id, before any frame
  local ends = req ~= nil and (msg.refused == nil or (msg.refused == req.type and not req.framed))
  if ends then
    self:fail(msg.id, err)
  else
    self.guard(self.on_general_error, err)
  end
end

--- Route one server message to the callbacks of its request.
function Requests:dispatch(msg)
  if type(msg) ~= "table" or type(msg.type) ~= "string" then
    return
  end
  if msg.type == "error" then
    return route_error(self, msg)
  end
  local req = msg.id ~= nil and self.pending[msg.id] or nil
  if not req then
    return -- an answer to nothing in flight (a finished or cancelled request): ignored
  end
  local cb, t = req.callbacks, msg.type
  if t == "reply.start" then
    req.framed = true
    self.guard(cb.on_start, msg)
  elseif t == "reply.delta" then
    req.framed = true
    req.parts[#req.parts + 1] = msg.text or ""
    self.guard(cb.on_delta, msg.text or "", table.concat(req.parts), msg)
  elseif t == "emote" then
    req.framed = true
    self.guard(cb.on_emote, msg.emote, msg)
  elseif t == "action" then
    req.framed = true
    self.guard(cb.on_action, msg.name, msg.args or {}, msg)
  elseif t == "reply.end" then
    req.framed = true
    if msg.finish == "error" then
      -- an `error` with this id follows and ends the request (with the partial text)
      req.parts = { msg.text or table.concat(req.parts) }
      return
    end
    finish(self, msg.id)
    self.guard(cb.on_done, msg.text or "", msg)
  else
    -- ok, pong, memory, quest, barks, scene.*, x.* answers: the request's answer
    finish(self, msg.id)
    local field = ANSWER_FIELD[t]
    self.guard(cb.on_done, field and msg[field] or msg, msg)
  end
end

return Requests

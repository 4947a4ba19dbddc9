--- The requests in flight and the delivery of server messages to their callbacks. Which request
--- a message belongs to, and whether it ends it, is the Lua client's router (router.lua, the same
--- file as bindings/lua/npcbridge/router.lua; the protocol's routing and refusal rules); this
--- module turns its verdicts into callbacks. Knows nothing of HTTP.
---
--- Callbacks of a `say`: `on_start(msg)`, `on_delta(text, so_far, msg)`, `on_emote(emote, msg)`,
--- `on_action(name, args, msg)`, `on_done(text, msg)` (the `reply.end`; `msg.finish` says why it
--- ended: "stop", "length", "cancelled", ...), `on_error(err)`. Other requests: `on_done(answer,
--- msg)` and `on_error(err)`. An error (errors.lua) has `code`, `message`, `retryable`, `id`,
--- `retry_after_ms` and `partial` (the text streamed before a reply failed).
local router, errors = ...

local Requests = {}
Requests.__index = Requests

--- A router; `guard(fn, ...)` calls a game callback without letting it break the mod;
--- `on_general_error(err)` receives errors that end no request.
function Requests.new(guard, on_general_error)
  return setmetatable({ router = router.new(), guard = guard,
    on_general_error = on_general_error }, Requests)
end

--- An error value (errors.lua) with the request id `id`.
function Requests.error(code, message, retryable, id)
  local err = errors.new(code, message, retryable)
  err.id = id
  return err
end

--- Remember a request sent as a message of `mtype` under `id`.
function Requests:add(id, mtype, callbacks)
  self.router:add(id, mtype, { callbacks = callbacks or {}, parts = {} })
end

--- Whether `id` is in flight.
function Requests:has(id)
  return self.router:get(id) ~= nil
end

--- Stop waiting for `id` without a callback; returns its record (nil when not in flight).
function Requests:remove(id)
  local rec = self.router:get(id)
  self.router:remove(id)
  return rec
end

--- The ids in flight.
function Requests:ids()
  local ids = {}
  for id in pairs(self.router.requests) do
    ids[#ids + 1] = id
  end
  return ids
end

local function partial_text(rec)
  if rec.partial_end then
    return rec.partial_end.text
  end
  if #rec.parts > 0 then
    return table.concat(rec.parts)
  end
end

local function fail_record(self, rec, err)
  err = errors.with_id(err, rec.id)
  if err.partial == nil then
    err.partial = partial_text(rec)
  end
  self.guard(rec.callbacks.on_error, err)
end

--- End the request `id` with the error `err`.
function Requests:fail(id, err)
  local rec = self:remove(id)
  if rec then
    fail_record(self, rec, err)
  end
end

--- End every request in flight with an error of `code` (the session behind them is gone),
--- except those sent as a message of a type in `keep` (a set of types, optional).
function Requests:fail_all(code, message, retryable, keep)
  local all = self.router:take_all()
  for id, rec in pairs(all) do
    if keep and keep[rec.type] then
      self.router.requests[id] = rec
    else
      fail_record(self, rec, errors.new(code, message, retryable))
    end
  end
end

-- the field of an answer message that is its value for `on_done`
local ANSWER_FIELD = { memory = "items", quest = "quest", barks = "results" }

local function stream(self, rec, msg)
  local cb, t = rec.callbacks, msg.type
  if t == "reply.start" then
    self.guard(cb.on_start, msg)
  elseif t == "reply.delta" then
    rec.parts[#rec.parts + 1] = msg.text or ""
    self.guard(cb.on_delta, msg.text or "", table.concat(rec.parts), msg)
  elseif t == "emote" then
    self.guard(cb.on_emote, msg.emote, msg)
  elseif t == "action" then
    self.guard(cb.on_action, msg.name, msg.args or {}, msg)
  end
end

--- Deliver one server message to the callbacks of its request (messages of no request in
--- flight are dropped, errors among them go to `on_general_error`).
function Requests:dispatch(msg)
  if type(msg) ~= "table" or type(msg.type) ~= "string" then
    return
  end
  local rec, what = self.router:route(msg)
  if not rec then
    if msg.type == "error" then
      self.guard(self.on_general_error, errors.from_server(msg))
    end
    return
  end
  if what == "opened" then
    -- a scene line under its own id: its frames go to the callbacks of the scene request
    rec.callbacks, rec.parts = rec.parent.callbacks, {}
    return stream(self, rec, msg)
  elseif what == "stream" then
    return stream(self, rec, msg)
  elseif what ~= "end" then
    return -- "partial": a reply.end with finish "error"; its error follows and ends it
  end
  local cb = rec.callbacks
  if msg.type == "error" then
    local err = errors.from_server(msg)
    err.refused = msg.refused
    fail_record(self, rec, err)
  elseif msg.type == "reply.end" then
    self.guard(cb.on_done, msg.text or "", msg)
  else
    -- ok, pong, memory, quest, barks, scene.done, x.* answers: the request's answer
    local field = ANSWER_FIELD[msg.type]
    self.guard(cb.on_done, field and msg[field] or msg, msg)
  end
end

return Requests

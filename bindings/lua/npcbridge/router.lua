--- Which request a server frame belongs to, and whether it ends that request. No socket, no
--- callbacks: the client feeds it decoded frames and acts on the answer; the flow vectors
--- (tests/vectors/flows.json, spec/flows_spec.lua) feed it the same way. Rules: docs/protocol.md,
--- "Talking", "Scenes" and "Errors".
---
---   local r = router.new()
---   r:add(7, "say", record)            -- a message of type "say" was sent under id 7
---   local rec, what = r:route(frame)   -- what: "stream" | "partial" | "opened" | "end" | nil
---@class npcbridge.router
local M = { _VERSION = "0.1.0" }

local setmetatable = setmetatable

-- Frames of a reply in progress: they never end a request (`transcript` opens the reply of a
-- `speech`, `reply.audio` carries its voice).
M.STREAM_TYPES = {
  ["reply.start"] = true,
  ["reply.delta"] = true,
  ["reply.audio"] = true,
  ["action"] = true,
  ["emote"] = true,
  ["transcript"] = true,
}

--- The type given to a scene reply's request: the client sent nothing under that id, so no
--- refusal (whose `refused` names a message type) can ever end it.
M.SCENE_REPLY = "scene reply"

---@class npcbridge.router.Router
---@field requests table<any, table> pending requests by id
local Router = {}
Router.__index = Router
M.Router = Router

--- An empty router.
---@return npcbridge.router.Router
function M.new()
  return setmetatable({ requests = {} }, Router)
end

--- Wait for the answers to a message of type `mtype` sent under `id`. `record` (default a new
--- table) is stored and handed back by `route`; it gets the fields `id`, `type`, `seen` (a frame
--- arrived for it), `partial_end` (a `reply.end` with finish "error") and `parent`.
---@param id any
---@param mtype string
---@param record table|nil
---@return table record
function Router:add(id, mtype, record)
  record = record or {}
  record.id, record.type, record.seen = id, mtype, false
  self.requests[id] = record
  return record
end

--- The pending request with this id, or nil.
---@param id any
---@return table|nil
function Router:get(id)
  return self.requests[id]
end

--- Stop waiting for a request (timed out, failed to send...).
---@param id any
function Router:remove(id)
  self.requests[id] = nil
end

--- Forget every pending request and return them (id -> record).
---@return table<any, table>
function Router:take_all()
  local all = self.requests
  self.requests = {}
  return all
end

--- Route one decoded server frame (a map with `type`). Returns the request record and what the
--- frame does to it, or nil when the frame is stray (it belongs to no pending request: report it
--- through the general error callback, or as a message of its own):
---   "stream"  a frame of the reply in progress (`reply.start`, `reply.delta`, `reply.audio`,
---             `emote`, `action`, the `transcript` of a `speech`)
---   "partial" a `reply.end` with finish "error": kept in `record.partial_end`; the request ends
---             with the `error` that follows under the same id
---   "opened"  a `reply.start` whose `parent` names a pending request: a new request (a scene
---             reply, a world event's reaction) under its own id, `record.parent` = the parent's
---             record
---   "end"     the frame ends the request (`reply.end`, a single answer, `scene.done`, an error);
---             the request is no longer pending
--- An `error` carrying `refused` ends a request only when `refused` is the type of the message
--- sent under that id and no frame has arrived for it yet; any other refusal is stray (it
--- refused a later message that reused the id, e.g. a duplicate `say`, a `cancel`, or a
--- `speech.chunk` / `speech.end` of an utterance: those touch no request).
---@param msg table
---@return table|nil record
---@return "stream"|"partial"|"opened"|"end"|nil what
function Router:route(msg)
  local t, id = msg.type, msg.id
  local rec = id ~= nil and self.requests[id] or nil
  if not rec then
    local parent = t == "reply.start" and msg.parent ~= nil and self.requests[msg.parent] or nil
    if not parent or id == nil then return nil end
    parent.seen = true
    rec = self:add(id, M.SCENE_REPLY, { parent = parent })
    rec.seen = true
    return rec, "opened"
  end
  if t == "error" then
    if msg.refused ~= nil and (msg.refused ~= rec.type or rec.seen) then return nil end
    self.requests[id] = nil
    return rec, "end"
  end
  rec.seen = true
  if M.STREAM_TYPES[t] then return rec, "stream" end
  if t == "reply.end" and msg.finish == "error" then
    rec.partial_end = msg
    return rec, "partial"
  end
  self.requests[id] = nil
  return rec, "end"
end

return M

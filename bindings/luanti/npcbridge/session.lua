--- The session with the npcbridge server over its HTTP transport (docs/protocol.md, "HTTP
--- transport"): `POST /v1/sessions` opens it, messages go one at a time (in order) to
--- `POST /v1/sessions/{sid}/messages`, and one long-poll `GET ...?cursor=` is always open to
--- receive what the server sends. A session the server no longer knows (404: it expired, or the
--- server restarted) is opened again, with the NPC definitions sent again; requests that were
--- running in it end with `session_lost`. When the server cannot be reached, the requests
--- waiting end with `unreachable` and the session (or the poll) is retried with a growing pause.
local Requests = ...

local Session = {}
Session.__index = Session

local MAX_RETRY_S = 30
-- definitions are sent again with every new session: their requests wait for that answer
local DEFINITIONS = { ["npc.define"] = true }

--- A session over `transport`. `opts`: `url` (for messages), `client` (the hello's client name),
--- `poll_wait_s`, `log(level, text)`, `after(seconds, fn)`, `requests` (a Requests router).
function Session.new(transport, opts)
  return setmetatable({
    transport = transport, url = opts.url, client = opts.client, log = opts.log,
    after = opts.after, requests = opts.requests, poll_wait_s = opts.poll_wait_s or 20,
    state = "idle", sid = nil, cursor = 0, generation = 0,
    queue = {}, sending = false, definitions = {}, definition_order = {}, refused = {},
    retry_s = 1, outage_logged = false, welcome = nil,
  }, Session)
end

--- "idle", "connecting", "ready", "unreachable" (retrying) or "refused" (token or version).
function Session:status()
  return self.state
end

local function fail_queue(self, code, message, retryable)
  local queue = self.queue
  self.queue = {}
  for _, item in ipairs(queue) do
    if item.msg.id ~= nil then
      self.requests:fail(item.msg.id, Requests.error(code, message, retryable))
    end
  end
end

local function error_of(result, what)
  local body = result.body
  if body and body.type == "error" then
    return Requests.error(body.code or "internal", body.message or what, body.retryable)
  end
  return Requests.error("internal", what .. " (HTTP " .. result.code .. ")", false)
end

local connect, poll, pump

local function log_outage(self, reason)
  if not self.outage_logged then
    self.outage_logged = true
    self.log("error", "cannot reach the npcbridge server at " .. self.url .. ": " .. reason
      .. ". Is it running, and is npcbridge.url right? Retrying in the background.")
  end
end

local function log_recovery(self)
  if self.outage_logged then
    self.log("action", "connected to the npcbridge server at " .. self.url)
  end
  self.outage_logged, self.retry_s = false, 1
end

-- the next pause before a retry: 1, 2, 4 ... 30 s
local function next_pause(self)
  local delay = self.retry_s
  self.retry_s = math.min(self.retry_s * 2, MAX_RETRY_S)
  return delay
end

-- no session could be opened: what waits for one ends with `unreachable`; retry later
local function unreachable(self, reason)
  self.state, self.sid = "unreachable", nil
  self.generation = self.generation + 1
  log_outage(self, reason)
  self.requests:fail_all("unreachable", "the npcbridge server cannot be reached", true)
  self.queue = {}
  local generation = self.generation
  self.after(next_pause(self), function()
    if self.generation == generation and self.state == "unreachable" then
      connect(self)
    end
  end)
end

-- the session is gone on the server (expired, or the server restarted): a new one, at once;
-- what was sent in the old one ends with `session_lost`, what still waits goes to the new one
local function lost(self)
  self.log("warning", "the npcbridge session expired; opening a new one")
  self.state, self.sid = "idle", nil
  self.generation = self.generation + 1
  local queued = {}
  for _, item in ipairs(self.queue) do
    if item.msg.id ~= nil then
      queued[item.msg.id] = self.requests:remove(item.msg.id)
    end
  end
  self.requests:fail_all("session_lost", "the npcbridge session expired; the request was "
    .. "cancelled", true, DEFINITIONS)
  for id, rec in pairs(queued) do
    self.requests.router.requests[id] = rec
  end
  connect(self)
end

local function on_welcome(self, body)
  self.sid, self.welcome, self.cursor = body.session, body.welcome or {}, 0
  self.refused = {}
  self.state = "ready"
  log_recovery(self)
  -- the NPCs defined so far go first (definitions belong to a session), then what waited
  local defines = {}
  for _, npc in ipairs(self.definition_order) do
    local def = self.definitions[npc]
    -- the latest define_npc call still waiting for its answer hears this one's
    local id = self.requests:has(def.id) and def.id or nil
    defines[#defines + 1] = { msg = { type = "npc.define", id = id, npc = npc,
      persona = def.persona } }
  end
  for _, item in ipairs(self.queue) do
    if item.msg.type ~= "npc.define" then
      defines[#defines + 1] = item
    end
  end
  self.queue = defines
  poll(self)
  pump(self)
end

connect = function(self)
  if self.state == "connecting" or self.state == "ready" then
    return
  end
  self.state = "connecting"
  self.generation = self.generation + 1
  local generation = self.generation
  local hello = { type = "hello", protocol = 1, client = self.client }
  local ok, err = self.transport:request("POST", "/v1/sessions", hello, 10, function(result)
    if generation ~= self.generation then
      return
    end
    if not result.reachable then
      return unreachable(self, result.reason)
    end
    if result.code == 201 and result.body and type(result.body.session) == "string" then
      return on_welcome(self, result.body)
    end
    local refusal = error_of(result, "the server refused the session")
    if result.code == 404 and not (result.body and result.body.type == "error") then
      refusal = Requests.error("unsupported_protocol", "no HTTP transport there (POST "
        .. "/v1/sessions answered 404): is npcbridge.url an npcbridge server?", false)
    end
    self.state = "refused"
    self.log("error", "the npcbridge server at " .. self.url .. " refused the session: "
      .. refusal.code .. " (" .. refusal.message .. ")"
      .. (refusal.code == "unauthorized" and "; check npcbridge.token" or ""))
    self.requests:fail_all(refusal.code, refusal.message, false)
    self.queue = {}
  end)
  if not ok then
    self.state = "idle"
    self.log("error", "cannot encode the hello message: " .. tostring(err))
  end
end

local function messages_path(self)
  return "/v1/sessions/" .. self.sid .. "/messages"
end

poll = function(self)
  local generation = self.generation
  local path = messages_path(self) .. "?cursor=" .. string.format("%d", self.cursor)
    .. "&wait=" .. string.format("%d", self.poll_wait_s)
  self.transport:request("GET", path, nil, self.poll_wait_s + 15, function(result)
    if generation ~= self.generation then
      return
    end
    if not result.reachable then
      -- the session may well live on (a restart shows as a 404 once the server is back): poll
      -- it again after a pause; the requests running now end, their answers may never come
      log_outage(self, result.reason)
      self.state = "unreachable"
      self.requests:fail_all("unreachable", "the npcbridge server cannot be reached", true,
        DEFINITIONS)
      return self.after(next_pause(self), function()
        if generation == self.generation then
          poll(self)
        end
      end)
    end
    if self.state == "unreachable" then
      self.state = "ready"
      log_recovery(self)
    end
    if result.code == 404 then
      return lost(self)
    end
    if result.code == 410 then
      -- older than what the server keeps: everything kept is newer, so read it from the start
      self.log("warning", "missed messages from the npcbridge server (cursor expired)")
      self.cursor = 0
      return poll(self)
    end
    if result.code ~= 200 or not result.body or type(result.body.cursor) ~= "number" then
      self.log("error", "unexpected answer to a poll (HTTP " .. result.code .. "); retrying")
      return self.after(2, function()
        if generation == self.generation then
          poll(self)
        end
      end)
    end
    self.cursor = result.body.cursor
    for _, msg in ipairs(result.body.messages or {}) do
      if msg.type == "error" and msg.id ~= nil and self.refused[msg.id] then
        self.refused[msg.id] = nil -- already delivered as the answer to its POST
      else
        self.requests:dispatch(msg)
      end
    end
    poll(self)
  end)
end

-- send the head of the queue; the next one goes when it is answered (the server sees the
-- messages in the order the game sent them: a definition before the `say` that uses it)
pump = function(self)
  if self.sending or not self.sid or #self.queue == 0 then
    return
  end
  local item = table.remove(self.queue, 1)
  local generation = self.generation
  self.sending = true
  local ok, err = self.transport:request("POST", messages_path(self), item.msg, 15,
    function(result)
      self.sending = false
      if generation ~= self.generation then
        -- the session changed while this was on its way: send it again in the new one
        if item.msg.type ~= "npc.define" then
          table.insert(self.queue, 1, item)
        end
        return pump(self)
      end
      if not result.reachable then
        -- it may or may not have reached the server: it ends here, the queue goes on
        log_outage(self, result.reason)
        if item.msg.id ~= nil then
          self.requests:fail(item.msg.id, Requests.error("unreachable",
            "the npcbridge server cannot be reached", true))
        end
        return pump(self)
      end
      if result.code == 404 then
        table.insert(self.queue, 1, item)
        return lost(self)
      end
      if result.code ~= 200 and item.msg.id ~= nil then
        -- refused at once: the answer is the error. The poll may bring the same error (the
        -- session keeps it too): remember the id so that copy is not taken for a stray one
        self.refused[item.msg.id] = true
        self.requests:fail(item.msg.id, error_of(result, "the server refused the message"))
      end
      -- the answer's other messages also come through the poll, which delivers each once
      pump(self)
    end)
  if not ok then
    -- ends on the next step: a caller never hears an error before its call returned
    self.sending = false
    local id = item.msg.id
    self.after(0, function()
      if id ~= nil then
        self.requests:fail(id, Requests.error("bad_request",
          "the message cannot be sent as JSON: " .. tostring(err), false))
      end
      pump(self)
    end)
  end
end

--- Send `msg` (its `id`, when set, is registered with the router by the caller). Opens the
--- session first when there is none.
function Session:send(msg)
  self.queue[#self.queue + 1] = { msg = msg }
  if self.sid then
    pump(self)
  else
    if self.state == "unreachable" or self.state == "refused" then
      self.state = "idle" -- asked again: try at once rather than after the pause
    end
    connect(self)
  end
end

--- Remember the NPC `npc` (sent again whenever a new session opens) and define it now;
--- `id` is the request id whose callbacks hear the answer (of this session or the next).
function Session:define(npc, persona, id)
  if not self.definitions[npc] then
    self.definition_order[#self.definition_order + 1] = npc
  end
  self.definitions[npc] = { persona = persona, id = id }
  if self.sid then
    self:send({ type = "npc.define", id = id, npc = npc, persona = persona })
  else
    connect(self) -- sent first thing in the new session
  end
end

--- Drop a message still waiting in the queue; true when it was there.
function Session:unqueue(id)
  for i, item in ipairs(self.queue) do
    if item.msg.id == id then
      table.remove(self.queue, i)
      return true
    end
  end
  return false
end

--- Open the session now (the mod does at start-up, so the first `say` finds it ready).
function Session:start()
  connect(self)
end

--- End the session on the server (at shutdown; the answer is not awaited).
function Session:close()
  if self.sid then
    self.transport:request("DELETE", "/v1/sessions/" .. self.sid, nil, 2, function() end)
  end
  self.generation = self.generation + 1
  self.state, self.sid = "idle", nil
end

return Session

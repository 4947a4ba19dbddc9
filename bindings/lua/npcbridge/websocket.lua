--- Non-blocking WebSocket client (RFC 6455) over LuaSocket; `wss://` through LuaSec when installed.
---
--- The game calls `ws:update()` from its loop; every socket is in non-blocking mode
--- (`settimeout(0)`), so one call returns after at most `max_read` bytes or `max_update_time`
--- seconds of work, whichever comes first. The protocol itself lives in `wsproto` (no I/O), the
--- socket calls (TCP, TLS, reads within a budget) in `tcp`; this module drives both.
--- The only blocking step is the DNS lookup of a host name in `connect()`; use an IP address
--- (e.g. 127.0.0.1), or pass one already resolved as the `address` option, to avoid it.
---
---   local ws = websocket.new("ws://127.0.0.1:8765/")
---   ws:connect()
---   -- every frame:
---   for _, ev in ipairs(ws:update()) do
---     if ev.type == "open" then ws:send("hi")
---     elseif ev.type == "message" then print(ev.data)
---     elseif ev.type == "close" then print("closed", ev.code, ev.reason, ev.error) end
---   end
---@class npcbridge.websocket
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local wsproto = require(base .. "wsproto")
local handshake = require(base .. "wsproto_handshake")
local url = require(base .. "url")
local tcp = require(base .. "tcp")
local socket = require("socket")

local sub, find = string.sub, string.find
local ipairs, pcall, require, setmetatable, tostring = ipairs, pcall, require, setmetatable, tostring

---@class npcbridge.websocket.Options
---@field max_message number|nil largest incoming message in bytes (default 16 MiB); bigger: close 1009
---@field fragment_size number|nil send messages in frames of at most this many bytes
---@field headers table<string,string>|nil extra HTTP headers for the handshake
---@field address string|nil IP address to connect TCP to instead of looking up the URL's host
---                          (the Host header and TLS SNI still name the host)
---@field connect_timeout number|nil seconds for TCP + TLS + handshake (default 10)
---@field close_timeout number|nil seconds to wait for the server during the close handshake (default 3)
---@field max_read number|nil bytes read per update at most (default 1 MiB)
---@field max_update_time number|nil seconds one update may spend reading (default 0.005)
---@field ping_interval number|nil send a ping after this many seconds without any data from the
---                               server (default: never)
---@field ping_timeout number|nil drop the connection when nothing arrives this many seconds after
---                              such a ping (default 10); the "close" event has code 1006
---@field ssl_params table|nil LuaSec context parameters for wss:// (default: TLS client, verify
---                            against /etc/ssl/certs when that exists)

---@class npcbridge.websocket.Client
---@field state "idle"|"connecting"|"tls"|"handshake"|"open"|"closing"|"closed"
---@field url string
local Client = {}
Client.__index = Client
M.Client = Client

---@param url string
---@param opts npcbridge.websocket.Options|nil
---@return npcbridge.websocket.Client
function M.new(url, opts)
  opts = opts or {}
  local self = setmetatable({}, Client)
  self.url = url
  self.opts = opts
  self.state = "idle"
  self.events = {}
  return self
end

function Client:_event(ev)
  self.events[#self.events + 1] = ev
end

--- Start connecting. Returns true (the connection opens during later `update()` calls, which
--- report an "open" or a "close" event), or nil and an error message.
---@return boolean|nil ok
---@return string|nil err
function Client:connect()
  if self.state ~= "idle" and self.state ~= "closed" then return nil, "already " .. self.state end
  local parts, err = url.parse_url(self.url)
  if not parts then return nil, err end
  self.parts = parts
  self.proto = wsproto.new({ max_message = self.opts.max_message, fragment_size = self.opts.fragment_size })
  self.wbuf, self.wpos = "", 1
  self.rhead = ""
  self.close_info = nil
  self.deadline = socket.gettime() + (self.opts.connect_timeout or 10)
  if parts.secure then
    local ok, ssl = pcall(require, "ssl")
    if not ok then return nil, "wss:// needs LuaSec (module 'ssl'), which is not installed" end
    self.ssl = ssl
  end
  self.target = self.opts.address or parts.host
  local sock, connected = tcp.open(self.target, parts.port)
  if not sock then
    self.state = "closed"
    return nil, connected
  end
  self.sock = sock
  if connected then self:_connected() else self.state = "connecting" end
  return true
end

-- TCP is connected: TLS first for wss://, then the opening handshake.
function Client:_connected()
  if self.parts.secure then
    local params = self.opts.ssl_params or tcp.default_tls_params()
    local conn, err = tcp.wrap_tls(self.ssl, self.sock, params, self.parts.host)
    if not conn then return self:_abort(err) end
    self.sock = conn
    self.state = "tls"
    return self:_tls_step()
  end
  self:_start_handshake()
end

function Client:_tls_step()
  local done, err = tcp.tls_step(self.sock)
  if done then return self:_start_handshake() end
  if err then return self:_abort(err) end
end

function Client:_start_handshake()
  local p = self.parts
  local default_port = p.secure and 443 or 80
  local host = find(p.host, ":", 1, true) and ("[" .. p.host .. "]") or p.host
  if p.port ~= default_port then host = host .. ":" .. p.port end
  self.key = handshake.new_key()
  self.wbuf = handshake.handshake_request(host, p.path, self.key, self.opts.headers)
  self.wpos = 1
  self.state = "handshake"
end

-- The connection is over; report it once.
function Client:_finish(info)
  if self.sock then pcall(self.sock.close, self.sock) end
  self.sock = nil
  if self.state == "closed" then return end
  self.state = "closed"
  local ci = self.close_info or {}
  self:_event({
    type = "close",
    code = info.code or ci.code or 1006,
    reason = info.reason or ci.reason or "",
    clean = info.clean or false,
    error = info.error or ci.error,
  })
end

function Client:_abort(err)
  self:_finish({ error = err, code = 1006 })
end

-- write as much of the buffer as the socket takes now; nil, err when the socket failed
function Client:_flush()
  if self.proto and (self.state == "open" or self.state == "closing") then
    local more = self.proto:data_to_send()
    if #more > 0 then
      if self.wpos > 1 then self.wbuf, self.wpos = sub(self.wbuf, self.wpos), 1 end
      self.wbuf = self.wbuf .. more
    end
  end
  if self.wpos > #self.wbuf then return true end
  local err
  self.wpos, err = tcp.write(self.sock, self.wbuf, self.wpos)
  if self.wpos > #self.wbuf then self.wbuf, self.wpos = "", 1 end
  if err then return nil, err end
  return true
end

-- read what is available, up to the per-update budget; returns data, closed_err
function Client:_read()
  return tcp.read(self.sock, self.opts.max_read or 1048576, self.opts.max_update_time or 0.005)
end

function Client:_handle_events(events)
  for _, ev in ipairs(events) do
    if ev.type == "message" then
      self:_event(ev)
    elseif ev.type == "ping" or ev.type == "pong" then
      self:_event(ev)
    elseif ev.type == "close" then
      self.close_info = { code = ev.code or 1005, reason = ev.reason }
      self.state = "closing"
      self.close_deadline = socket.gettime() + (self.opts.close_timeout or 3)
    elseif ev.type == "fail" then
      self.close_info = { code = ev.code, reason = ev.message, error = "protocol error: " .. ev.message }
      self.state = "closing"
      self.close_deadline = socket.gettime() + (self.opts.close_timeout or 3)
    end
  end
end

-- Liveness: a ping after `ping_interval` seconds of silence; no data at all `ping_timeout`
-- seconds later means the peer (or the path to it) is dead.
function Client:_keepalive()
  local interval = self.opts.ping_interval
  if not interval or self.state ~= "open" then return end
  local t = socket.gettime()
  if self.keepalive_ping then
    if t - self.keepalive_ping > (self.opts.ping_timeout or 10) then
      self:_finish({ error = "no answer to a ping in " .. (self.opts.ping_timeout or 10) .. " s", code = 1006 })
    end
  elseif t - (self.last_rx or t) > interval then
    self.keepalive_ping = t
    self.proto:send_ping("keepalive")
  end
end

--- Do the pending work without blocking and return the events since the last call:
---   {type="open", headers=table}
---   {type="message", kind="binary"|"text", data=string}
---   {type="ping", data=string} / {type="pong", data=string}
---   {type="close", code=integer, reason=string, clean=boolean, error=string|nil}  (once; the end)
---@return table[] events
function Client:update()
  local st = self.state
  local now = socket.gettime()
  -- work the protocol deferred until the application had seen the messages before it
  local resume = self.proto ~= nil and self.proto:pending()
  if st == "connecting" then
    local done, err = tcp.finish_connect(self.sock, self.target, self.parts.port)
    if done then
      self:_connected()
    elseif err then
      self:_abort(err)
    elseif now > self.deadline then
      self:_abort("connect: timed out")
    end
  elseif st == "tls" then
    if now > self.deadline then self:_abort("tls handshake: timed out") else self:_tls_step() end
  end
  if self.state == "handshake" then
    local ok, err = self:_flush()
    if not ok then
      self:_abort("handshake: " .. tostring(err))
    else
      local data, rerr = self:_read()
      self.rhead = self.rhead .. data
      local e = find(self.rhead, "\r\n\r\n", 1, true)
      if e then
        local head, rest = sub(self.rhead, 1, e + 3), sub(self.rhead, e + 4)
        self.rhead = nil
        local headers, herr = handshake.check_handshake_response(head, self.key)
        if not headers then
          self:_abort(herr)
        else
          self.state = "open"
          self.last_rx = socket.gettime()
          self:_event({ type = "open", headers = headers })
          self.early = rest -- frames that came with the response: parsed with this update's reads
        end
      elseif #self.rhead > 16384 then
        self:_abort("handshake: response head too large")
      elseif rerr then
        self:_abort("handshake: connection " .. tostring(rerr))
      elseif now > self.deadline then
        self:_abort("handshake: timed out")
      end
    end
  end
  if self.state == "open" or self.state == "closing" then
    local ok, err = self:_flush()
    if not ok then
      self:_finish({ error = "send: " .. tostring(err) })
    else
      local data, rerr = self:_read()
      if self.early then
        -- one receive_data() per update: its deferral rule relies on that
        data, self.early = self.early .. data, nil
      end
      if #data > 0 then
        self.last_rx = socket.gettime()
        self.keepalive_ping = nil
      end
      if self.proto:pending() and not resume then
        self.proto:buffer(data) -- this update's events go to the application first
      elseif #data > 0 or resume then
        self:_handle_events(self.proto:receive_data(data))
      end
      self:_keepalive()
      if self.state ~= "closed" then
        ok, err = self:_flush()
        if rerr then
          -- the server closed TCP: what it sent before still counts (a deferred close frame)
          while self.proto:pending() do self:_handle_events(self.proto:receive_data("")) end
          -- clean when both close frames were exchanged (7.1.4)
          local p = self.proto
          local clean = p.close_sent and p.close_received
          local info = { clean = clean }
          if not clean and not (self.close_info and self.close_info.error) then
            info.error = "connection " .. tostring(rerr)
            info.code = 1006
          end
          self:_finish(info)
        elseif not ok then
          self:_finish({ error = "send: " .. tostring(err) })
        elseif self.state == "closing" and socket.gettime() > (self.close_deadline or now) then
          -- the server did not end TCP in time (7.1.1 lets the client close it then)
          local p = self.proto
          self:_finish({ clean = p.close_sent and p.close_received })
        end
      end
    end
  end
  local events = self.events
  self.events = {}
  return events
end

--- Queue a message (sent during `update()`). `kind` is "binary" (default) or "text".
---@param data string
---@param kind "binary"|"text"|nil
---@return boolean|nil ok
---@return string|nil err
function Client:send(data, kind)
  if self.state ~= "open" then return nil, "websocket is not open (" .. self.state .. ")" end
  local ok, err = self.proto:send_message(data, kind)
  if ok then self:_flush() end
  return ok, err
end

---@param payload string|nil
function Client:ping(payload)
  if self.state ~= "open" then return nil, "websocket is not open (" .. self.state .. ")" end
  return self.proto:send_ping(payload)
end

--- Drop the TCP connection now, without a closing handshake (a "close" event follows).
---@param reason string|nil
function Client:abort(reason)
  if self.state == "idle" or self.state == "closed" then return end
  self:_finish({ error = reason or "aborted", clean = false })
end

--- Start the closing handshake; a "close" event follows from `update()`.
---@param code integer|nil default 1000
---@param reason string|nil
function Client:close(code, reason)
  if self.state == "open" then
    self.proto:send_close(code or 1000, reason)
    self.close_info = { code = code or 1000, reason = reason or "" }
    self.state = "closing"
    self.close_deadline = socket.gettime() + (self.opts.close_timeout or 3)
    self:_flush()
  elseif self.state ~= "closed" and self.state ~= "idle" and self.state ~= "closing" then
    self:_finish({ code = code or 1000, reason = reason or "", clean = false, error = "closed before open" })
  end
end

return M

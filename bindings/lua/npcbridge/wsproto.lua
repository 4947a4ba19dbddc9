--- WebSocket protocol (RFC 6455) for a client, without any I/O ("sans-I/O").
---
--- Feed it the bytes that arrived from the server, get events back; ask it for the bytes to send.
--- It never touches a socket, so every rule here is tested on bytes alone (spec/wsproto*_spec.lua).
---
---   local p = wsproto.new({ max_message = 65536 })   -- after the opening handshake
---   local events = p:receive_data(bytes)   -- {type="message"|"ping"|"pong"|"close"|"fail", ...}
---   local bytes = p:send_message(data, "binary")                         -- masked client frames
---
--- This module holds the connection's protocol state (message assembly, control frames, the
--- closing handshake). It is built on `wsproto_frame` (opcodes, masking, encoding, the frame
--- parser) and `wsproto_close` (close codes and payloads); the opening handshake is
--- `wsproto_handshake`. Each of those is required by name where it is used. Sections cited are
--- those of RFC 6455.
---@class npcbridge.wsproto
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local frame = require(base .. "wsproto_frame")
local close = require(base .. "wsproto_close")
local utf8scan = require(base .. "utf8scan")
local random = require(base .. "random")

local sub, concat = string.sub, table.concat
local setmetatable = setmetatable
local utf8check, prefix_ok = utf8scan.valid, utf8scan.prefix_ok

local TEXT, BINARY, CONTINUATION = frame.TEXT, frame.BINARY, frame.CONTINUATION
local CLOSE, PING, PONG = frame.CLOSE, frame.PING, frame.PONG
local PROTOCOL_ERROR, INVALID_DATA, TOO_BIG = close.CLOSE_PROTOCOL_ERROR, close.CLOSE_INVALID_DATA, close.CLOSE_TOO_BIG
local encode_frame, close_payload, parse_close = frame.encode_frame, close.close_payload, close.parse_close

-- Text is checked for UTF-8 while it arrives up to this many bytes; a longer one when whole.
local EARLY_UTF8_LIMIT = 65536

---@class npcbridge.wsproto.Protocol
---@field state "open"|"closing"|"closed"
local Protocol = {}
Protocol.__index = Protocol
M.Protocol = Protocol

---@class npcbridge.wsproto.Options
---@field max_message number|nil largest message accepted (bytes), default 16 MiB
---@field fragment_size number|nil split outgoing messages into frames of this size (default: never)

--- The protocol state of a fresh connection (after the opening handshake).
---@param opts npcbridge.wsproto.Options|nil
---@return npcbridge.wsproto.Protocol
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Protocol)
  self.max_message = opts.max_message or 16777216
  self.fragment_size = opts.fragment_size
  self.parser = frame.Parser.new(self.max_message)
  self.state = "open"
  self.out = {} -- bytes waiting to be sent
  self.frag_opcode = nil
  self.frag_parts = nil
  self.frag_len = 0
  self.close_sent = false
  self.close_received = false
  return self
end

function Protocol:_queue(opcode, payload, fin)
  self.out[#self.out + 1] = encode_frame(opcode, payload, fin, random.bytes(4)) -- a fresh mask per frame (5.3)
end

--- Bytes to write to the socket (and forget them here).
---@return string
function Protocol:data_to_send()
  local s = concat(self.out)
  self.out = {}
  return s
end

--- Queue one message. `kind` is "binary" (default) or "text".
---@param data string
---@param kind "binary"|"text"|nil
---@return boolean|nil ok
---@return string|nil err
function Protocol:send_message(data, kind)
  if self.state ~= "open" then return nil, "websocket is " .. self.state end
  local opcode = kind == "text" and TEXT or BINARY
  local size = self.fragment_size
  if not size or #data <= size then
    self:_queue(opcode, data, true)
    return true
  end
  local i, n = 1, #data
  while i <= n do
    local j = i + size - 1
    self:_queue(i == 1 and opcode or CONTINUATION, sub(data, i, j), j >= n)
    i = j + 1
  end
  return true
end

--- Queue a ping.
---@param payload string|nil at most 125 bytes
---@return boolean|nil ok
---@return string|nil err
function Protocol:send_ping(payload)
  if self.state ~= "open" then return nil, "websocket is " .. self.state end
  payload = payload or ""
  if #payload > 125 then return nil, "ping payload longer than 125 bytes" end
  self:_queue(PING, payload, true)
  return true
end

--- Start the closing handshake (7.1.2). Returns false when a close was already sent.
---@param code integer|nil
---@param reason string|nil
function Protocol:send_close(code, reason)
  if self.close_sent then return false end
  self.close_sent = true
  self:_queue(CLOSE, close_payload(code, reason), true)
  if self.state == "open" then self.state = "closing" end
  return true
end

-- Fail the connection (7.1.7): send a close with the code, read nothing more but a close.
function Protocol:_fail(events, code, message)
  self:send_close(code, message)
  self.failed = true
  events[#events + 1] = { type = "fail", code = code, message = message }
end

--- Feed bytes received from the server; returns the list of events they complete:
---   {type="message", kind="binary"|"text", data=string}
---   {type="ping", data=string}        (the pong is already queued)
---   {type="pong", data=string}
---   {type="close", code=integer|nil, reason=string}   (the server's close; the echo is queued)
---   {type="fail", code=integer, message=string}       (protocol violation; our close is queued)
---@param data string
---@return table[] events
function Protocol:receive_data(data)
  local events = {}
  if self.close_received or self.failed then return events end
  -- A violation or a close frame that came right after messages is acted on in the next call, so
  -- the application sees those messages while the connection is still open and can answer them
  -- (Autobahn 3.2, 5.15, 7.1.6): the bytes after that frame stay unread.
  local deferred = self.deferred
  if deferred then
    self.deferred = nil
    if deferred.frame then
      local ok, fcode, fmsg = self:_frame(deferred.frame, events)
      if not ok then self:_fail(events, fcode, fmsg) end
    else
      self:_fail(events, deferred.code, deferred.message)
    end
    if self.close_received or self.failed then return events end
  end
  self.parser:feed(data)
  local delivered = false
  while true do
    local f, code, message = self.parser:next()
    if f == nil then
      -- fail fast on text that can no longer become UTF-8, inside an incomplete frame (8.1)
      code, message = self:_check_partial_text()
    elseif f then
      if f.opcode == CLOSE and delivered then
        self.deferred = { frame = f }
        break
      end
      local n, ok = #events, nil
      ok, code, message = self:_frame(f, events)
      if ok and #events > n and events[#events].type == "message" then delivered = true end
    end
    if code then -- a violation (from the parser, the partial text or the frame)
      if delivered then self.deferred = { code = code, message = message } else self:_fail(events, code, message) end
      break
    end
    if f == nil or self.close_received then break end
  end
  return events
end

-- The close code and message when the incomplete frame at the read position is text that can no
-- longer become UTF-8; nil otherwise (or when the frame is not text or too large to check now).
function Protocol:_check_partial_text()
  if self.close_sent then return nil end
  local parser = self.parser
  local h = parser:_header()
  if not h or h.rsv ~= 0 or h.masked then return nil end
  local text = (h.opcode == TEXT and not self.frag_opcode)
    or (h.opcode == CONTINUATION and self.frag_opcode == TEXT)
  if not text or self.frag_len + h.len > EARLY_UTF8_LIMIT then return nil end -- (large text: checked when whole)
  local partial = parser:_partial_payload(h)
  if #partial == 0 then return nil end
  local before = self.frag_opcode == TEXT and concat(self.frag_parts) or ""
  if not prefix_ok(before .. partial) then
    return INVALID_DATA, "text message is not UTF-8"
  end
end

--- Keep bytes for later without parsing them (while `pending()`).
---@param data string
function Protocol:buffer(data)
  self.parser:feed(data)
end

--- True when `receive_data` has work left even without new bytes (call it again with "").
---@return boolean
function Protocol:pending()
  return self.deferred ~= nil
end

-- A control frame (5.5): answer a ping, report a pong, take part in the closing handshake.
function Protocol:_control(f, events)
  local op = f.opcode
  if op > PONG then return false, PROTOCOL_ERROR, "reserved control opcode" end
  if not f.fin then return false, PROTOCOL_ERROR, "fragmented control frame" end
  if #f.payload > 125 then return false, PROTOCOL_ERROR, "control frame payload over 125 bytes" end
  if op == PING then
    if not self.close_sent then self:_queue(PONG, f.payload, true) end
    events[#events + 1] = { type = "ping", data = f.payload }
  elseif op == PONG then
    events[#events + 1] = { type = "pong", data = f.payload }
  else -- close
    local code, reason, msg = parse_close(f.payload)
    if code == false then return false, reason, msg end
    self.close_received = true
    if not self.close_sent then self:send_close(code, "") end -- echo (5.5.1)
    self.state = "closed"
    events[#events + 1] = { type = "close", code = code, reason = reason }
  end
  return true
end

-- Act on one complete frame: true, or false, close code, message when it breaks the protocol.
function Protocol:_frame(f, events)
  if f.rsv ~= 0 then return false, PROTOCOL_ERROR, "reserved bits set without an extension" end
  if f.masked then return false, PROTOCOL_ERROR, "the server masked a frame" end
  local op = f.opcode
  if op >= 0x8 then return self:_control(f, events) end
  if self.close_sent then return true end -- closing: data frames are read and dropped (7.1.2)
  if op == CONTINUATION then
    if not self.frag_opcode then return false, PROTOCOL_ERROR, "continuation frame with nothing to continue" end
  elseif op == TEXT or op == BINARY then
    if self.frag_opcode then return false, PROTOCOL_ERROR, "new message before the last one ended" end
    self.frag_opcode, self.frag_parts, self.frag_len = op, {}, 0
  else
    return false, PROTOCOL_ERROR, "reserved data opcode"
  end
  self.frag_len = self.frag_len + #f.payload
  if self.frag_len > self.max_message then return false, TOO_BIG, "message larger than the size limit" end
  local parts = self.frag_parts
  parts[#parts + 1] = f.payload
  if self.frag_opcode == TEXT and not f.fin and self.frag_len <= EARLY_UTF8_LIMIT then
    -- fail fast on text that can never become valid UTF-8 (section 8.1)
    if not prefix_ok(concat(parts)) then
      return false, INVALID_DATA, "text message is not UTF-8"
    end
  end
  if f.fin then
    local msg = concat(parts)
    local kind = self.frag_opcode == TEXT and "text" or "binary"
    self.frag_opcode, self.frag_parts, self.frag_len = nil, nil, 0
    if kind == "text" and not utf8check(msg) then
      return false, INVALID_DATA, "text message is not UTF-8"
    end
    events[#events + 1] = { type = "message", kind = kind, data = msg }
  end
  return true
end

return M

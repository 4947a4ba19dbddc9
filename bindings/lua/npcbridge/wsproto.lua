--- WebSocket protocol (RFC 6455) for a client, without any I/O ("sans-I/O").
---
--- Feed it the bytes that arrived from the server, get events back; ask it for the bytes to send.
--- It never touches a socket, so every rule here is tested on bytes alone (spec/wsproto_spec.lua).
---
---   local p = wsproto.new({ max_message = 65536 })
---   local req, key = wsproto.handshake_request("example.com:80", "/", key)   -- opening handshake
---   local ok, err = wsproto.check_handshake_response(response_head, key)
---   local events = p:receive_data(bytes)   -- {type="message"|"ping"|"pong"|"close"|"fail", ...}
---   local bytes = p:send_message(data, "binary")                         -- masked client frames
---
--- Sections cited are those of RFC 6455.
---@class npcbridge.wsproto
local M = { _VERSION = "0.1.0" }

local base = (...):match("^(.-)[^%.]+$") or ""
local sha1 = require(base .. "sha1")
local base64 = require(base .. "base64")
local utf8scan = require(base .. "utf8scan")
local random = require(base .. "random")
local utf8check = utf8scan.valid

local byte, char, sub, concat, floor = string.byte, string.char, string.sub, table.concat, math.floor
local tunpack = unpack or table.unpack

M.GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" -- section 1.3

--- Opcodes (section 5.2).
M.CONTINUATION, M.TEXT, M.BINARY, M.CLOSE, M.PING, M.PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

--- Close codes used by this client (section 7.4.1).
M.CLOSE_NORMAL, M.CLOSE_GOING_AWAY, M.CLOSE_PROTOCOL_ERROR = 1000, 1001, 1002
M.CLOSE_INVALID_DATA, M.CLOSE_POLICY, M.CLOSE_TOO_BIG = 1007, 1008, 1009

--- `n` random bytes, for the handshake key (4.1) and every frame mask (5.3): the best source the
--- platform offers (npcbridge.random; never the game's math.random).
---@param n integer
---@return string
M.random_bytes = random.bytes

-- ---------------------------------------------------------------------------------------------
-- XOR of bytes, arithmetic only (a 64 KiB table built on first use), for masking (5.3).
-- ---------------------------------------------------------------------------------------------

local XOR
local function xor_table()
  if XOR then return XOR end
  local x4 = {}
  for a = 0, 15 do
    for b = 0, 15 do
      local r, p, aa, bb = 0, 1, a, b
      for _ = 1, 4 do
        if aa % 2 ~= bb % 2 then r = r + p end
        aa, bb, p = floor(aa / 2), floor(bb / 2), p * 2
      end
      x4[a * 16 + b] = r
    end
  end
  XOR = {}
  for a = 0, 255 do
    local ah, al = floor(a / 16), a % 16
    for b = 0, 255 do
      XOR[a * 256 + b] = x4[ah * 16 + floor(b / 16)] * 16 + x4[al * 16 + b % 16]
    end
  end
  return XOR
end

--- XOR `data` with the 4-byte `key`, repeating (section 5.3). Masking and unmasking are the same.
---@param data string
---@param key string
---@return string
function M.mask(data, key)
  local X = xor_table()
  local k = { byte(key, 1, 4) }
  local k0 = { [0] = k[1] * 256, k[2] * 256, k[3] * 256, k[4] * 256 }
  local out, n = {}, #data
  local CH = 4096 -- bytes per string.byte/string.char call (stays below C stack limits)
  for i = 1, n, CH do
    local j = i + CH - 1
    if j > n then j = n end
    local b = { byte(data, i, j) }
    for m = 1, #b do
      b[m] = X[k0[(i + m - 2) % 4] + b[m]]
    end
    out[#out + 1] = char(tunpack(b))
  end
  return concat(out)
end

-- ---------------------------------------------------------------------------------------------
-- Frames (section 5.2)
-- ---------------------------------------------------------------------------------------------

local function be_bytes(v, n)
  local t = {}
  for i = n, 1, -1 do
    t[i] = v % 256
    v = floor(v / 256)
  end
  return char(tunpack(t, 1, n))
end

--- Encode one frame. `mask_key` (4 bytes) masks it, as every client frame must be (5.1).
---@param opcode integer
---@param payload string
---@param fin boolean|nil default true
---@param mask_key string|nil
---@return string
function M.encode_frame(opcode, payload, fin, mask_key)
  payload = payload or ""
  local b1 = (fin == false and 0 or 0x80) + opcode
  local n = #payload
  local mbit = mask_key and 0x80 or 0
  local head
  if n < 126 then
    head = char(b1, mbit + n)
  elseif n < 65536 then
    head = char(b1, mbit + 126) .. be_bytes(n, 2)
  else
    head = char(b1, mbit + 127) .. be_bytes(n, 8)
  end
  if mask_key then return head .. mask_key .. M.mask(payload, mask_key) end
  return head .. payload
end

--- A frame parser fed bytes: `parser:feed(bytes)`, then `parser:next()` until it returns nil.
--- `next()` returns a frame table {fin, rsv, opcode, masked, payload}, or nil (need more bytes),
--- or false, close_code, message (the bytes break section 5.2 or exceed `max_frame`).
---@class npcbridge.wsproto.Parser
---@field max_frame number
local Parser = {}
Parser.__index = Parser
M.Parser = Parser

---@param max_frame number|nil largest payload accepted, default 16 MiB
---@return npcbridge.wsproto.Parser
function Parser.new(max_frame)
  return setmetatable({ chunks = {}, buf = "", pos = 1, max_frame = max_frame or 16777216 }, Parser)
end

---@param data string
function Parser:feed(data)
  if data and #data > 0 then self.chunks[#self.chunks + 1] = data end
end

--- Bytes fed but not yet consumed by a frame.
---@return integer
function Parser:buffered()
  local n = #self.buf - self.pos + 1
  for i = 1, #self.chunks do n = n + #self.chunks[i] end
  return n
end

function Parser:_have(n)
  local avail = #self.buf - self.pos + 1
  if avail >= n then return true end
  if #self.chunks == 0 then return false end
  local parts = { sub(self.buf, self.pos) }
  for i = 1, #self.chunks do
    parts[#parts + 1] = self.chunks[i]
    self.chunks[i] = nil
  end
  self.buf, self.pos = concat(parts), 1
  return #self.buf >= n
end

---@return table|nil|false frame
---@return integer|nil close_code
---@return string|nil message
-- The header of the frame at the read position, not consumed: a table {fin, rsv, opcode, masked,
-- len, head (header length)}, nil when incomplete, or false, close code, message.
function Parser:_header()
  if not self:_have(2) then return nil end
  local p = self.pos
  local b1, b2 = byte(self.buf, p, p + 1)
  local h = { fin = b1 >= 128, rsv = floor(b1 / 16) % 8, opcode = b1 % 16, masked = b2 >= 128 }
  local len, head = b2 % 128, 2
  if len == 126 then
    head = 4
    if not self:_have(head) then return nil end
    p = self.pos
    local x, y = byte(self.buf, p + 2, p + 3)
    len = x * 256 + y
  elseif len == 127 then
    head = 10
    if not self:_have(head) then return nil end
    p = self.pos
    local b = { byte(self.buf, p + 2, p + 9) }
    if b[1] >= 128 then return false, M.CLOSE_PROTOCOL_ERROR, "frame length has its top bit set" end
    len = 0
    for i = 1, 8 do len = len * 256 + b[i] end
  end
  if len > self.max_frame then
    return false, M.CLOSE_TOO_BIG, "frame larger than the message size limit"
  end
  if h.masked then head = head + 4 end
  h.len, h.head = len, head
  return h
end

---@return table|nil|false frame
---@return integer|nil close_code
---@return string|nil message
function Parser:next()
  local h, code, message = self:_header()
  if not h then return h, code, message end
  local head, len = h.head, h.len
  if not self:_have(head + len) then return nil end
  local p = self.pos
  local mask_key
  if h.masked then mask_key = sub(self.buf, p + head - 4, p + head - 1) end
  local payload = sub(self.buf, p + head, p + head + len - 1)
  self.pos = p + head + len
  if self.pos > 65536 and self.pos > #self.buf / 2 then
    self.buf, self.pos = sub(self.buf, self.pos), 1
  end
  if mask_key then payload = M.mask(payload, mask_key) end
  return { fin = h.fin, rsv = h.rsv, opcode = h.opcode, masked = h.masked, payload = payload }
end

--- The header and the payload bytes received so far of an incomplete frame (nothing consumed),
--- or nil. Lets text be checked for UTF-8 before its frame is complete.
---@return table|nil header
---@return string|nil partial_payload
function Parser:peek_partial()
  local h = self:_header()
  if not h then return nil end
  self:_have(h.head + h.len) -- joins every chunk received so far
  local p = self.pos
  local avail = #self.buf - p + 1 - h.head
  if avail <= 0 then return h, "" end
  if avail > h.len then avail = h.len end
  local data = sub(self.buf, p + h.head, p + h.head + avail - 1)
  if h.masked then data = M.mask(data, sub(self.buf, p + h.head - 4, p + h.head - 1)) end
  return h, data
end

-- ---------------------------------------------------------------------------------------------
-- Close frames (sections 5.5.1, 7.4)
-- ---------------------------------------------------------------------------------------------

--- Whether a close code may appear in a close frame on the wire: those of section 7.4.1 and the
--- IANA registry (7.4.2: 1012 service restart, 1013 try again later, 1014 bad gateway), and the
--- ranges for libraries and applications (3000-4999). 1004 is reserved; 1005, 1006 and 1015 only
--- describe a close locally and are never sent.
---@param code integer
---@return boolean
function M.valid_close_code(code)
  return (code >= 1000 and code <= 1003) or (code >= 1007 and code <= 1014) or (code >= 3000 and code <= 4999)
end

--- Payload of a close frame: empty when there is no code or the code may not be sent (1005 "no
--- status" is said by sending none, 7.4.1); the reason is cut to 123 bytes on a character
--- boundary (control frames carry at most 125 bytes, 5.5) and dropped if it is not UTF-8 (the
--- peer would fail the connection with 1007).
---@param code integer|nil
---@param reason string|nil
---@return string
function M.close_payload(code, reason)
  if not code or not M.valid_close_code(code) then return "" end
  reason = reason or ""
  if not utf8check(reason) then reason = "" end
  return char(floor(code / 256), code % 256) .. utf8scan.cut(reason, 123)
end

--- Parse a close payload; returns code, reason or false, close code, message when it is invalid.
---@param payload string
function M.parse_close(payload)
  if #payload == 0 then return nil, "" end
  if #payload == 1 then return false, M.CLOSE_PROTOCOL_ERROR, "close frame payload of one byte" end
  local code = byte(payload, 1) * 256 + byte(payload, 2)
  if not M.valid_close_code(code) then return false, M.CLOSE_PROTOCOL_ERROR, "invalid close code" end
  local reason = sub(payload, 3)
  if not utf8check(reason) then return false, M.CLOSE_INVALID_DATA, "close reason is not UTF-8" end
  return code, reason
end

-- ---------------------------------------------------------------------------------------------
-- The connection's protocol state: message assembly, control frames, closing handshake
-- ---------------------------------------------------------------------------------------------

---@class npcbridge.wsproto.Protocol
---@field state "open"|"closing"|"closed"
local Protocol = {}
Protocol.__index = Protocol
M.Protocol = Protocol

---@class npcbridge.wsproto.Options
---@field max_message number|nil largest message accepted (bytes), default 16 MiB
---@field fragment_size number|nil split outgoing messages into frames of this size (default: never)

---@param opts npcbridge.wsproto.Options|nil
---@return npcbridge.wsproto.Protocol
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Protocol)
  self.max_message = opts.max_message or 16777216
  self.fragment_size = opts.fragment_size
  self.parser = Parser.new(self.max_message)
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
  self.out[#self.out + 1] = M.encode_frame(opcode, payload, fin, M.random_bytes(4))
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
  local opcode = kind == "text" and M.TEXT or M.BINARY
  local size = self.fragment_size
  if not size or #data <= size then
    self:_queue(opcode, data, true)
    return true
  end
  local i, n = 1, #data
  while i <= n do
    local j = i + size - 1
    self:_queue(i == 1 and opcode or M.CONTINUATION, sub(data, i, j), j >= n)
    i = j + 1
  end
  return true
end

---@param payload string|nil at most 125 bytes
function Protocol:send_ping(payload)
  if self.state ~= "open" then return nil, "websocket is " .. self.state end
  payload = payload or ""
  if #payload > 125 then return nil, "ping payload longer than 125 bytes" end
  self:_queue(M.PING, payload, true)
  return true
end

--- Start the closing handshake (7.1.2). Returns false when a close was already sent.
---@param code integer|nil
---@param reason string|nil
function Protocol:send_close(code, reason)
  if self.close_sent then return false end
  self.close_sent = true
  self:_queue(M.CLOSE, M.close_payload(code, reason), true)
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
    local frame, code, message = self.parser:next()
    if frame == nil then
      -- fail fast on text that can no longer become UTF-8, inside an incomplete frame (8.1)
      local fcode, fmsg = self:_check_partial_text()
      if fcode then
        if delivered then self.deferred = { code = fcode, message = fmsg } else self:_fail(events, fcode, fmsg) end
      end
      break
    end
    if frame == false then
      if delivered then self.deferred = { code = code, message = message } else self:_fail(events, code, message) end
      break
    end
    if frame.opcode == M.CLOSE and delivered then
      self.deferred = { frame = frame }
      break
    end
    local n = #events
    local ok, fcode, fmsg = self:_frame(frame, events)
    if not ok then
      if delivered then self.deferred = { code = fcode, message = fmsg } else self:_fail(events, fcode, fmsg) end
      break
    end
    if #events > n and events[#events].type == "message" then delivered = true end
    if self.close_received then break end
  end
  return events
end

function Protocol:_check_partial_text()
  if self.close_sent then return nil end
  local h = self.parser:_header()
  if not h or h.rsv ~= 0 or h.masked then return nil end
  local text = (h.opcode == M.TEXT and not self.frag_opcode)
    or (h.opcode == M.CONTINUATION and self.frag_opcode == M.TEXT)
  if not text or self.frag_len + h.len > 65536 then return nil end -- (large text: checked when whole)
  local _, partial = self.parser:peek_partial()
  if not partial or #partial == 0 then return nil end
  local before = self.frag_opcode == M.TEXT and concat(self.frag_parts) or ""
  if not M.utf8_prefix_ok(before .. partial) then
    return M.CLOSE_INVALID_DATA, "text message is not UTF-8"
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

function Protocol:_frame(f, events)
  if f.rsv ~= 0 then return false, M.CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension" end
  if f.masked then return false, M.CLOSE_PROTOCOL_ERROR, "the server masked a frame" end
  local op = f.opcode
  if op >= 0x8 then
    if op > 0xA then return false, M.CLOSE_PROTOCOL_ERROR, "reserved control opcode" end
    if not f.fin then return false, M.CLOSE_PROTOCOL_ERROR, "fragmented control frame" end
    if #f.payload > 125 then return false, M.CLOSE_PROTOCOL_ERROR, "control frame payload over 125 bytes" end
    if op == M.PING then
      if not self.close_sent then self:_queue(M.PONG, f.payload, true) end
      events[#events + 1] = { type = "ping", data = f.payload }
    elseif op == M.PONG then
      events[#events + 1] = { type = "pong", data = f.payload }
    else -- close
      local code, reason, msg = M.parse_close(f.payload)
      if code == false then return false, reason, msg end
      self.close_received = true
      if not self.close_sent then self:send_close(code, "") end -- echo (5.5.1)
      self.state = "closed"
      events[#events + 1] = { type = "close", code = code, reason = reason }
    end
    return true
  end
  if self.close_sent then return true end -- closing: data frames are read and dropped (7.1.2)
  if op == M.CONTINUATION then
    if not self.frag_opcode then return false, M.CLOSE_PROTOCOL_ERROR, "continuation frame with nothing to continue" end
  elseif op == M.TEXT or op == M.BINARY then
    if self.frag_opcode then return false, M.CLOSE_PROTOCOL_ERROR, "new message before the last one ended" end
    self.frag_opcode, self.frag_parts, self.frag_len = op, {}, 0
  else
    return false, M.CLOSE_PROTOCOL_ERROR, "reserved data opcode"
  end
  self.frag_len = self.frag_len + #f.payload
  if self.frag_len > self.max_message then return false, M.CLOSE_TOO_BIG, "message larger than the size limit" end
  local parts = self.frag_parts
  parts[#parts + 1] = f.payload
  if self.frag_opcode == M.TEXT and not f.fin and self.frag_len <= 65536 then
    -- fail fast on text that can never become valid UTF-8 (section 8.1)
    if not M.utf8_prefix_ok(concat(parts)) then
      return false, M.CLOSE_INVALID_DATA, "text message is not UTF-8"
    end
  end
  if f.fin then
    local msg = concat(parts)
    local kind = self.frag_opcode == M.TEXT and "text" or "binary"
    self.frag_opcode, self.frag_parts, self.frag_len = nil, nil, 0
    if kind == "text" and not utf8check(msg) then
      return false, M.CLOSE_INVALID_DATA, "text message is not UTF-8"
    end
    events[#events + 1] = { type = "message", kind = kind, data = msg }
  end
  return true
end

--- True when `s` is valid UTF-8, or could still become valid UTF-8 with more bytes appended.
--- Lets a fragmented text message fail as soon as it cannot be UTF-8 (8.1, Autobahn 6.4.x).
---@param s string
---@return boolean
M.utf8_prefix_ok = utf8scan.prefix_ok

-- ---------------------------------------------------------------------------------------------
-- Opening handshake (section 4.1)
-- ---------------------------------------------------------------------------------------------

--- A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
---@return string
function M.new_key()
  return base64.encode(M.random_bytes(16))
end

--- The value the server must answer in Sec-WebSocket-Accept for `key`.
---@param key string
---@return string
function M.accept_for(key)
  return base64.encode(sha1.digest(key .. M.GUID))
end

--- The HTTP request of the opening handshake.
---@param host string the Host header value ("host" or "host:port")
---@param path string request target, e.g. "/" or "/ws?x=1"
---@param key string Sec-WebSocket-Key
---@param headers table<string,string>|nil extra headers
---@return string
function M.handshake_request(host, path, key, headers)
  local lines = {
    "GET " .. path .. " HTTP/1.1",
    "Host: " .. host,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: " .. key,
    "Sec-WebSocket-Version: 13",
  }
  if headers then
    local names = {}
    for k in pairs(headers) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do lines[#lines + 1] = k .. ": " .. headers[k] end
  end
  return concat(lines, "\r\n") .. "\r\n\r\n"
end

--- Check the server's response head (everything up to and including the blank line) (4.1, 4.2.2).
--- Returns a table of lower-cased headers, or nil and a message.
---@param head string
---@param key string
---@return table<string,string>|nil headers
---@return string|nil err
function M.check_handshake_response(head, key)
  local status_line = head:match("^([^\r\n]*)\r\n")
  if not status_line then return nil, "handshake: no status line" end
  local code = status_line:match("^HTTP/1%.%d (%d%d%d)")
  if not code then return nil, "handshake: bad status line" end
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    name = name:lower()
    value = value:gsub("[ \t]+$", "")
    headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
  end
  if code ~= "101" then return nil, "handshake: server answered HTTP " .. code, headers end
  if not (headers["upgrade"] or ""):lower():find("websocket", 1, true) then
    return nil, "handshake: missing 'Upgrade: websocket'"
  end
  local conn = (headers["connection"] or ""):lower()
  local has_upgrade = false
  for token in conn:gmatch("[^,%s]+") do
    if token == "upgrade" then has_upgrade = true end
  end
  if not has_upgrade then return nil, "handshake: missing 'Connection: Upgrade'" end
  if headers["sec-websocket-accept"] ~= M.accept_for(key) then
    return nil, "handshake: wrong Sec-WebSocket-Accept"
  end
  if headers["sec-websocket-extensions"] then return nil, "handshake: server chose an extension we did not offer" end
  if headers["sec-websocket-protocol"] then return nil, "handshake: server chose a subprotocol we did not offer" end
  return headers
end

return M

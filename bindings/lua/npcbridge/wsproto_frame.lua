--- WebSocket frames (RFC 6455 section 5.2): masking (5.3), encoding a frame, and a parser fed
--- bytes as they arrive. No I/O, no protocol state (that is `npcbridge.wsproto`, built on this).
---@class npcbridge.wsproto_frame
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local close = require(base .. "wsproto_close")

local byte, char, sub, concat, floor = string.byte, string.char, string.sub, table.concat, math.floor
local setmetatable = setmetatable
local tunpack = unpack or table.unpack

--- Opcodes (section 5.2).
M.CONTINUATION, M.TEXT, M.BINARY, M.CLOSE, M.PING, M.PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

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
local function mask(data, key)
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
M.mask = mask

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
  if mask_key then return head .. mask_key .. mask(payload, mask_key) end
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

--- A parser with nothing fed yet.
---@param max_frame number|nil largest payload accepted, default 16 MiB
---@return npcbridge.wsproto.Parser
function Parser.new(max_frame)
  return setmetatable({ chunks = {}, buf = "", pos = 1, max_frame = max_frame or 16777216 }, Parser)
end

--- Add bytes received from the peer (kept until a frame consumes them).
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

--- The header of the frame at the read position, not consumed: a table {fin, rsv, opcode, masked,
--- len, head (header length)}, nil when incomplete, or false, close code, message.
---@return table|nil|false header
---@return integer|nil close_code
---@return string|nil message
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
    if b[1] >= 128 then return false, close.CLOSE_PROTOCOL_ERROR, "frame length has its top bit set" end
    len = 0
    for i = 1, 8 do len = len * 256 + b[i] end
  end
  if len > self.max_frame then
    return false, close.CLOSE_TOO_BIG, "frame larger than the message size limit"
  end
  if h.masked then head = head + 4 end
  h.len, h.head = len, head
  return h
end

--- The next complete frame (consumed), nil when more bytes are needed, or false, close code,
--- message when the bytes break section 5.2.
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
  if mask_key then payload = mask(payload, mask_key) end
  return { fin = h.fin, rsv = h.rsv, opcode = h.opcode, masked = h.masked, payload = payload }
end

--- The payload bytes received so far (unmasked) of the incomplete frame whose header `_header()`
--- just returned; nothing is consumed.
---@param h table
---@return string
function Parser:_partial_payload(h)
  self:_have(h.head + h.len) -- joins every chunk received so far
  local p = self.pos
  local avail = #self.buf - p + 1 - h.head
  if avail <= 0 then return "" end
  if avail > h.len then avail = h.len end
  local data = sub(self.buf, p + h.head, p + h.head + avail - 1)
  if h.masked then data = mask(data, sub(self.buf, p + h.head - 4, p + h.head - 1)) end
  return data
end

--- The header and the payload bytes received so far of an incomplete frame (nothing consumed),
--- or nil. Lets text be checked for UTF-8 before its frame is complete.
---@return table|nil header
---@return string|nil partial_payload
function Parser:peek_partial()
  local h = self:_header()
  if not h then return nil end
  return h, self:_partial_payload(h)
end

return M

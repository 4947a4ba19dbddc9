--- SHA-1 (FIPS 180-4) in pure Lua, arithmetic only (Lua 5.1-5.4, LuaJIT; no `bit` library).
--- Used for the WebSocket handshake (RFC 6455 section 4.1: Sec-WebSocket-Accept); it is not meant
--- for bulk hashing.
---@class npcbridge.sha1
local M = { _VERSION = "0.1.0" }

local floor, char, byte, format, rep = math.floor, string.char, string.byte, string.format, string.rep

local TWO32 = 4294967296

local function band(a, b)
  local r, p = 0, 1
  for _ = 1, 32 do
    local x, y = a % 2, b % 2
    if x == 1 and y == 1 then r = r + p end
    a, b, p = (a - x) / 2, (b - y) / 2, p * 2
  end
  return r
end

local function bor(a, b)
  local r, p = 0, 1
  for _ = 1, 32 do
    local x, y = a % 2, b % 2
    if x == 1 or y == 1 then r = r + p end
    a, b, p = (a - x) / 2, (b - y) / 2, p * 2
  end
  return r
end

local function bxor(a, b)
  local r, p = 0, 1
  for _ = 1, 32 do
    local x, y = a % 2, b % 2
    if x ~= y then r = r + p end
    a, b, p = (a - x) / 2, (b - y) / 2, p * 2
  end
  return r
end

local function bnot(a) return TWO32 - 1 - a end

local function rol(x, n)
  local hi = floor(x / 2 ^ (32 - n))
  return (x * 2 ^ n) % TWO32 + hi
end

local function u32(s, i)
  local a, b, c, d = byte(s, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function be32(x)
  x = floor(x)
  return char(floor(x / 16777216) % 256, floor(x / 65536) % 256, floor(x / 256) % 256, x % 256)
end

--- The 20-byte SHA-1 digest of `msg`.
---@param msg string
---@return string digest raw bytes
function M.digest(msg)
  local len = #msg
  -- padding: 0x80, zeros, 64-bit big-endian bit length
  local bits = len * 8
  local pad = 64 - ((len + 9) % 64)
  if pad == 64 then pad = 0 end
  msg = msg .. "\128" .. rep("\0", pad) .. be32(floor(bits / TWO32)) .. be32(bits % TWO32)
  local h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do w[i] = u32(msg, chunk + i * 4) end
    for i = 16, 79 do
      w[i] = rol(bxor(bxor(w[i - 3], w[i - 8]), bxor(w[i - 14], w[i - 16])), 1)
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then
        f, k = bor(band(b, c), band(bnot(b), d)), 0x5A827999
      elseif i < 40 then
        f, k = bxor(bxor(b, c), d), 0x6ED9EBA1
      elseif i < 60 then
        f, k = bor(band(b, c), band(d, bor(b, c))), 0x8F1BBCDC
      else
        f, k = bxor(bxor(b, c), d), 0xCA62C1D6
      end
      local temp = (rol(a, 5) + f + e + k + w[i]) % TWO32
      e, d, c, b, a = d, c, rol(b, 30), a, temp
    end
    h0 = (h0 + a) % TWO32
    h1 = (h1 + b) % TWO32
    h2 = (h2 + c) % TWO32
    h3 = (h3 + d) % TWO32
    h4 = (h4 + e) % TWO32
  end
  return be32(h0) .. be32(h1) .. be32(h2) .. be32(h3) .. be32(h4)
end

--- The SHA-1 digest of `msg` as 40 lowercase hex digits.
---@param msg string
---@return string
function M.hex(msg)
  return (M.digest(msg):gsub(".", function(c) return format("%02x", byte(c)) end))
end

return M

--- Base64 (RFC 4648 section 4, standard alphabet, with padding) in pure Lua.
---@class npcbridge.base64
local M = { _VERSION = "0.1.0" }

local floor, char, byte, sub, concat = math.floor, string.char, string.byte, string.sub, table.concat

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local ENC, DEC = {}, {}
for i = 1, 64 do
  local c = sub(ALPHABET, i, i)
  ENC[i - 1] = c
  DEC[byte(c)] = i - 1
end

--- Encode bytes as base64.
---@param s string
---@return string
function M.encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = floor(n / 262144), floor(n / 4096) % 64
    local c3, c4 = floor(n / 64) % 64, n % 64
    out[#out + 1] = ENC[c1] .. ENC[c2] .. (b and ENC[c3] or "=") .. (c and ENC[c4] or "=")
  end
  return concat(out)
end

--- Decode base64; returns nil and a message for input that is not canonical padded base64.
---@param s string
---@return string|nil bytes
---@return string|nil err
function M.decode(s)
  if #s % 4 ~= 0 then return nil, "base64: length is not a multiple of 4" end
  local out = {}
  for i = 1, #s, 4 do
    local last = i + 3 == #s
    local v = { byte(s, i, i + 3) }
    local n, pad = 0, 0
    for j = 1, 4 do
      local d = DEC[v[j]]
      if v[j] == 61 and last and j >= 3 and (j == 4 or v[4] == 61) then
        pad = pad + 1
        d = 0
      elseif d == nil then
        return nil, "base64: invalid character"
      end
      n = n * 64 + d
    end
    local b1, b2, b3 = floor(n / 65536), floor(n / 256) % 256, n % 256
    if pad == 0 then
      out[#out + 1] = char(b1, b2, b3)
    elseif pad == 1 then
      if b3 ~= 0 then return nil, "base64: non-zero padding bits" end
      out[#out + 1] = char(b1, b2)
    else
      if b2 ~= 0 or b3 ~= 0 then return nil, "base64: non-zero padding bits" end
      out[#out + 1] = char(b1)
    end
  end
  return concat(out)
end

return M

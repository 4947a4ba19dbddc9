--- UTF-8 checks shared by the msgpack codec (str values) and the WebSocket protocol (text
--- messages, close reasons). Well-formed means RFC 3629: no overlong forms, no surrogates,
--- nothing above U+10FFFF. Pure Lua, arithmetic only.
---@class npcbridge.utf8scan
local M = { _VERSION = "0.1.0" }

local byte, sub = string.byte, string.sub

--- Scan `s` as UTF-8: "ok" when well-formed, "incomplete" when it ends inside a character whose
--- bytes so far are allowed (more bytes could still make it valid), "bad" otherwise.
---@param s string
---@return "ok"|"incomplete"|"bad"
function M.scan(s)
  if not s:find("[\128-\255]") then return "ok" end
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    if c < 0x80 then
      i = i + 1
    else
      local need, lo, hi
      if c >= 0xC2 and c <= 0xDF then
        need, lo, hi = 1, 0x80, 0xBF
      elseif c >= 0xE0 and c <= 0xEF then
        need, lo, hi = 2, c == 0xE0 and 0xA0 or 0x80, c == 0xED and 0x9F or 0xBF
      elseif c >= 0xF0 and c <= 0xF4 then
        need, lo, hi = 3, c == 0xF0 and 0x90 or 0x80, c == 0xF4 and 0x8F or 0xBF
      else
        return "bad"
      end
      for k = 1, need do
        local d = byte(s, i + k)
        if not d then return "incomplete" end
        if k > 1 then lo, hi = 0x80, 0xBF end
        if d < lo or d > hi then return "bad" end
      end
      i = i + need + 1
    end
  end
  return "ok"
end

--- True when `s` is well-formed UTF-8.
---@param s string
---@return boolean
function M.valid(s)
  return M.scan(s) == "ok"
end

--- True when `s` is well-formed UTF-8 or could still become so with more bytes appended.
---@param s string
---@return boolean
function M.prefix_ok(s)
  return M.scan(s) ~= "bad"
end

--- The longest prefix of the well-formed UTF-8 string `s` that is at most `max_bytes` long and
--- ends on a character boundary (a cut never splits a character).
---@param s string
---@param max_bytes integer
---@return string
function M.cut(s, max_bytes)
  if #s <= max_bytes then return s end
  local j = max_bytes
  -- step back over continuation bytes (10xxxxxx) to the first byte of the character cut in two
  while j > 0 and byte(s, j + 1) >= 0x80 and byte(s, j + 1) < 0xC0 do j = j - 1 end
  return sub(s, 1, j)
end

return M

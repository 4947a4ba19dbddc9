--- WebSocket close frames (RFC 6455 sections 5.5.1, 7.4): which codes may be on the wire, the
--- payload of a close frame the client sends, and the checks on one the server sent. No I/O;
--- `npcbridge.wsproto` and `npcbridge.wsproto_frame` use it.
---@class npcbridge.wsproto_close
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local utf8scan = require(base .. "utf8scan")

local byte, char, sub, floor = string.byte, string.char, string.sub, math.floor
local utf8check, cut = utf8scan.valid, utf8scan.cut

--- Close codes used by this client (section 7.4.1).
M.CLOSE_NORMAL, M.CLOSE_GOING_AWAY, M.CLOSE_PROTOCOL_ERROR = 1000, 1001, 1002
M.CLOSE_INVALID_DATA, M.CLOSE_POLICY, M.CLOSE_TOO_BIG = 1007, 1008, 1009

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
  return char(floor(code / 256), code % 256) .. cut(reason, 123)
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

return M

--- The WebSocket opening handshake of a client (RFC 6455 section 4.1): the key, the HTTP request,
--- and the checks on the server's response. No I/O; `npcbridge.websocket` drives it.
---@class npcbridge.wsproto_handshake
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local sha1 = require(base .. "sha1")
local base64 = require(base .. "base64")
local random = require(base .. "random")

local concat, sort = table.concat, table.sort
local pairs, ipairs = pairs, ipairs

M.GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" -- section 1.3

--- A fresh Sec-WebSocket-Key: base64 of 16 random bytes (npcbridge.random).
---@return string
function M.new_key()
  return base64.encode(random.bytes(16))
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
    sort(names)
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

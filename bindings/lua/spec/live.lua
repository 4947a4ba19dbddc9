-- Helpers for the specs that talk to real servers (started by tests/test_lua.py).
local socket = require("socket")

local L = {}

L.ws_url = os.getenv("NPCBRIDGE_WS_URL")
L.control_url = os.getenv("NPCBRIDGE_CONTROL_URL")
L.echo_url = os.getenv("NPCBRIDGE_ECHO_URL")

--- Call `update()` on every object until `done()` is true or `timeout` seconds pass.
--- Returns true when done, false on timeout.
function L.pump(objects, done, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while socket.gettime() < deadline do
    for _, o in ipairs(objects) do o:update() end
    if done() then return true end
    socket.select(nil, nil, 0.002)
  end
  return false
end

--- Start an HTTP POST without waiting for the answer (the server may need us to keep pumping
--- our WebSocket clients meanwhile). Returns an object with :update() and .done/.status.
function L.post_async(url)
  local host, port, path = url:match("^http://([^:/]+):(%d+)(.*)$")
  assert(host, "bad url " .. url)
  if path == "" then path = "/" end
  local tcp = assert(socket.tcp())
  tcp:settimeout(5)
  assert(tcp:connect(host, tonumber(port)))
  assert(tcp:send("POST " .. path .. " HTTP/1.1\r\nHost: " .. host .. ":" .. port
    .. "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
  tcp:settimeout(0)
  local req = { done = false, body = "" }
  function req.update()
    if req.done then return end
    local data, err, partial = tcp:receive(8192)
    req.body = req.body .. (data or partial or "")
    if err == "closed" then
      req.done = true
      req.status = tonumber(req.body:match("^HTTP/1%.%d (%d%d%d)"))
      tcp:close()
    end
  end
  return req
end

--- A loopback port nothing listens on (bound by the OS, then released).
function L.refused_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

return L

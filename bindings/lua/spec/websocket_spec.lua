-- The non-blocking LuaSocket transport. Needs an echo server: tests/test_lua.py starts one
-- (Python `websockets`) and passes NPCBRIDGE_ECHO_URL; without it only the offline cases run.
local websocket = require("npcbridge.websocket")
local socket = require("socket")
local L = require("spec.live")

describe("websocket offline", function()
  it("reports a refused connection as a close event, not an error", function()
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    srv:close()
    local ws = websocket.new("ws://127.0.0.1:" .. port .. "/")
    local ok = ws:connect()
    local closed
    if ok then
      L.pump({ { update = function() for _, ev in ipairs(ws:update()) do if ev.type == "close" then closed = ev end end end } },
        function() return closed end, 5)
      assert.are.equal(1006, closed.code)
      assert.truthy(closed.error:find("connect"))
    end
    assert.are.equal("closed", ws.state)
  end)

  it("times out a handshake the server never answers", function()
    local srv = assert(socket.bind("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local ws = websocket.new("ws://127.0.0.1:" .. port .. "/", { connect_timeout = 0.3 })
    assert(ws:connect())
    local closed
    local t0 = socket.gettime()
    local worst = 0
    while not closed and socket.gettime() - t0 < 5 do
      local t = socket.gettime()
      for _, ev in ipairs(ws:update()) do if ev.type == "close" then closed = ev end end
      worst = math.max(worst, socket.gettime() - t)
      socket.select(nil, nil, 0.01)
    end
    srv:close()
    assert.truthy(closed.error:find("timed out"))
    -- a blocking read would take the whole connect_timeout (0.3 s)
    assert.is_true(worst < 0.15, "one update() took " .. worst .. " s")
  end)
end)

describe("websocket keepalive", function()
  it("drops a connection whose server went silent", function()
    local handshake = require("npcbridge.wsproto_handshake")
    local srv = assert(socket.bind("127.0.0.1", 0))
    srv:settimeout(0)
    local _, port = srv:getsockname()
    local ws = websocket.new("ws://127.0.0.1:" .. port .. "/", { ping_interval = 0.1, ping_timeout = 0.2 })
    assert(ws:connect())
    local conn, head, answered, opened, closed = nil, "", false, false, nil
    local t0 = socket.gettime()
    while not closed and socket.gettime() - t0 < 5 do
      if not conn then
        conn = srv:accept()
        if conn then conn:settimeout(0) end
      elseif not answered then
        local d, _, p = conn:receive(4096)
        head = head .. (d or p or "")
        local key = head:match("Sec%-WebSocket%-Key: ([^\r\n]+)")
        if key and head:find("\r\n\r\n", 1, true) then
          -- a server that completes the handshake, then never reads or writes again
          conn:send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            .. "Sec-WebSocket-Accept: " .. handshake.accept_for(key) .. "\r\n\r\n")
          answered = true
        end
      end
      for _, ev in ipairs(ws:update()) do
        if ev.type == "open" then opened = true end
        if ev.type == "close" then closed = ev end
      end
      socket.select(nil, nil, 0.01)
    end
    if conn then conn:close() end
    srv:close()
    assert.is_true(opened)
    assert.are.equal(1006, closed.code)
    assert.truthy(closed.error:find("ping"))
    assert.is_true(socket.gettime() - t0 < 2)
  end)
end)

describe("websocket over TLS (wss://, LuaSec)", function()
  local wss_url, cafile = os.getenv("NPCBRIDGE_WSS_URL"), os.getenv("NPCBRIDGE_WSS_CAFILE")
  local has_luasec = pcall(require, "ssl")
  if not (wss_url and has_luasec) then
    pending("wss: needs NPCBRIDGE_WSS_URL (tests/test_lua.py) and LuaSec")
    return
  end

  it("echoes through wss:// with the server's certificate verified", function()
    local ws = websocket.new(wss_url, {
      ssl_params = { mode = "client", protocol = "any", verify = "peer", cafile = cafile },
    })
    assert(ws:connect())
    local got, closed
    local obj = {
      update = function()
        for _, ev in ipairs(ws:update()) do
          if ev.type == "open" then ws:send(string.rep("s", 70000)) end
          if ev.type == "message" then got = ev.data; ws:close() end
          if ev.type == "close" then closed = ev end
        end
      end,
    }
    assert.is_true(L.pump({ obj }, function() return closed end, 10))
    assert.are.equal(70000, #(got or ""))
    assert.is_true(closed.clean)
  end)

  it("refuses a certificate it cannot verify", function()
    local ws = websocket.new(wss_url, {
      ssl_params = { mode = "client", protocol = "any", verify = "peer", cafile = "/nonexistent" },
    })
    local ok = ws:connect()
    local closed
    if ok then
      local obj = { update = function() for _, ev in ipairs(ws:update()) do if ev.type == "close" then closed = ev end end end }
      L.pump({ obj }, function() return closed end, 10)
      assert.are.equal(1006, closed.code)
      assert.truthy(closed.error:find("tls"))
    end
  end)
end)

if not L.echo_url then
  describe("websocket against an echo server", function()
    pending("NPCBRIDGE_ECHO_URL is not set (run through tests/test_lua.py)")
  end)
  return
end

-- open a client, run `script(ws, ev)` for each event until it returns true
local function session(opts, script, timeout)
  local ws = websocket.new(L.echo_url, opts)
  assert(ws:connect())
  local finished = false
  local obj = {
    update = function()
      for _, ev in ipairs(ws:update()) do
        if script(ws, ev) then finished = true end
      end
    end,
  }
  assert(L.pump({ obj }, function() return finished end, timeout or 10), "session timed out")
  return ws
end

describe("websocket against an echo server", function()
  it("echoes text and binary messages of every length form", function()
    local sizes = { 0, 1, 125, 126, 65535, 65536, 300000 }
    local got = {}
    session(nil, function(ws, ev)
      if ev.type == "open" then
        for _, n in ipairs(sizes) do ws:send(string.rep("b", n), "binary") end
        ws:send("héllo", "text")
      elseif ev.type == "message" then
        got[#got + 1] = ev
        if #got == #sizes + 1 then ws:close() end
      elseif ev.type == "close" then
        assert.is_true(ev.clean)
        assert.are.equal(1000, ev.code)
        return true
      end
    end)
    for i, n in ipairs(sizes) do
      assert.are.equal("binary", got[i].kind)
      assert.are.equal(n, #got[i].data)
    end
    assert.are.same({ type = "message", kind = "text", data = "héllo" }, got[#got])
  end)

  it("sends fragmented messages", function()
    local got
    session({ fragment_size = 7 }, function(ws, ev)
      if ev.type == "open" then ws:send(string.rep("0123456789", 10)) end
      if ev.type == "message" then got = ev.data; ws:close() end
      if ev.type == "close" then return true end
    end)
    assert.are.equal(string.rep("0123456789", 10), got)
  end)

  it("gets a pong for its ping", function()
    local pong
    session(nil, function(ws, ev)
      if ev.type == "open" then assert(ws:ping("are you there")) end
      if ev.type == "pong" then pong = ev.data; ws:close() end
      if ev.type == "close" then return true end
    end)
    assert.are.equal("are you there", pong)
  end)

  it("closes with 1009 when a message exceeds the limit", function()
    local closed
    session({ max_message = 1000 }, function(ws, ev)
      if ev.type == "open" then ws:send(string.rep("x", 2000)) end
      if ev.type == "close" then closed = ev; return true end
    end)
    assert.are.equal(1009, closed.code)
  end)

  it("keeps each update() short while a large message arrives", function()
    local worst, done = 0, false
    local ws = websocket.new(L.echo_url, { max_read = 65536 })
    assert(ws:connect())
    local t0 = socket.gettime()
    while not done and socket.gettime() - t0 < 10 do
      local t = socket.gettime()
      local events = ws:update()
      if socket.gettime() - t > worst then worst = socket.gettime() - t end
      for _, ev in ipairs(events) do
        if ev.type == "open" then ws:send(string.rep("y", 2000000)) end
        if ev.type == "message" then done = #ev.data == 2000000 end
      end
      socket.select(nil, nil, 0.001)
    end
    ws:close()
    assert.is_true(done)
    -- reading is bounded per call; masking 2 MB for sending happens once, in send()
    assert.is_true(worst < 0.2, "one update() took " .. worst .. " s")
  end)
end)

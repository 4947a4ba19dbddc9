-- Non-blocking TCP (npcbridge.tcp) on loopback: connecting, writing, reading within a budget,
-- and which socket errors only mean "not now".
local tcp = require("npcbridge.tcp")
local socket = require("socket")
local L = require("spec.live")

-- Connect to `srv` (a listening socket) and accept: client socket, server side of it.
local function pair(srv)
  local _, port = srv:getsockname()
  local sock = assert(tcp.open("127.0.0.1", port))
  local conn
  local t0 = socket.gettime()
  while not conn and socket.gettime() - t0 < 2 do
    conn = srv:accept()
    if not conn then socket.select(nil, nil, 0.01) end
  end
  assert(conn, "no connection accepted")
  local done
  while not done and socket.gettime() - t0 < 2 do done = tcp.finish_connect(sock, "127.0.0.1", port) end
  assert.is_true(done)
  return sock, conn
end

describe("tcp", function()
  it("tells 'not now' from failures", function()
    for _, e in ipairs({ "timeout", "wantread", "wantwrite" }) do assert.is_true(tcp.again(e)) end
    for _, e in ipairs({ "closed", "connection refused" }) do assert.is_false(tcp.again(e)) end
    assert.is_false(tcp.again(nil))
  end)

  it("reports a refused connection as a connect error", function()
    local port = L.refused_port()
    local sock, connected = tcp.open("127.0.0.1", port)
    local err = not sock and connected or nil
    local t0 = socket.gettime()
    while sock and not err and socket.gettime() - t0 < 2 do
      local done
      done, err = tcp.finish_connect(sock, "127.0.0.1", port)
      assert.is_not_true(done)
    end
    if sock then sock:close() end
    assert.truthy(err and err:find("^connect: "), tostring(err))
  end)

  it("writes and reads on a connected socket, reading at most about the budget", function()
    local srv = assert(socket.bind("127.0.0.1", 0))
    srv:settimeout(0)
    local sock, conn = pair(srv)
    conn:settimeout(0)
    local data = string.rep("x", 100000)
    local pos, received = 1, 0
    local t0 = socket.gettime()
    while received < #data and socket.gettime() - t0 < 5 do
      if pos <= #data then
        local err
        pos, err = tcp.write(sock, data, pos)
        assert.is_nil(err)
      end
      local d, _, partial = conn:receive(65536)
      received = received + #(d or partial or "")
    end
    assert.are.equal(#data + 1, pos)
    assert.are.equal(#data, received)
    sock:close()
    conn:close()
    -- the other way: a budget of 10 bytes takes one receive (8192 at most), not everything
    sock, conn = pair(srv)
    conn:send(string.rep("y", 50000))
    socket.select({ sock }, nil, 1)
    local got = tcp.read(sock, 10, 1)
    assert.is_true(#got >= 1 and #got <= 8192, tostring(#got))
    conn:close()
    local rest, err = "", nil
    t0 = socket.gettime()
    while not err and socket.gettime() - t0 < 2 do
      local d
      d, err = tcp.read(sock, 1048576, 0.005)
      rest = rest .. d
    end
    assert.are.equal(50000, #got + #rest)
    assert.are.equal("closed", err)
    sock:close()
    srv:close()
  end)
end)

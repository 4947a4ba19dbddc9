-- The sans-I/O WebSocket protocol on bytes alone. Sections are those of RFC 6455.
local wsproto = require("npcbridge.wsproto")
local S = require("spec.support")

local unhex, hex = S.unhex, S.hex

-- a server frame (unmasked)
local function sframe(opcode, payload, fin, rsv)
  local f = wsproto.encode_frame(opcode, payload, fin)
  if rsv then f = string.char(f:byte(1) + rsv * 16) .. f:sub(2) end
  return f
end

-- decode the frames a client sent (checking each is masked)
local function client_frames(bytes)
  local p = wsproto.Parser.new()
  p:feed(bytes)
  local out = {}
  while true do
    local f = p:next()
    if not f then break end
    assert.is_true(f.masked, "client frames must be masked (5.1)")
    out[#out + 1] = f
  end
  return out
end

describe("frame encoding (5.2)", function()
  it("matches the RFC's unmasked examples (5.7)", function()
    assert.are.equal("810548656c6c6f", hex(wsproto.encode_frame(0x1, "Hello")))
    assert.are.equal("010348656c", hex(wsproto.encode_frame(0x1, "Hel", false)))
    assert.are.equal("80026c6f", hex(wsproto.encode_frame(0x0, "lo", true)))
    assert.are.equal("890548656c6c6f", hex(wsproto.encode_frame(0x9, "Hello")))
  end)

  it("matches the RFC's masked example (5.7)", function()
    assert.are.equal("818537fa213d7f9f4d5158", hex(wsproto.encode_frame(0x1, "Hello", true, unhex("37fa213d"))))
  end)

  it("uses the 16-bit and 64-bit length forms", function()
    assert.are.equal("827e0100", hex(wsproto.encode_frame(0x2, string.rep("x", 256))):sub(1, 8))
    assert.are.equal("827e007e", hex(wsproto.encode_frame(0x2, string.rep("x", 126))):sub(1, 8))
    assert.are.equal("827d", hex(wsproto.encode_frame(0x2, string.rep("x", 125))):sub(1, 4))
    assert.are.equal("827f0000000000010000", hex(wsproto.encode_frame(0x2, string.rep("x", 65536))):sub(1, 20))
  end)

  it("masks with a random key per frame", function()
    local p = wsproto.new()
    p:send_message("same payload")
    p:send_message("same payload")
    local frames = client_frames(p:data_to_send())
    assert.are.equal(2, #frames)
    assert.are.equal("same payload", frames[1].payload)
    assert.are.equal("same payload", frames[2].payload)
    local raw = wsproto.new()
    raw:send_message("same payload")
    raw:send_message("same payload")
    local bytes = raw:data_to_send()
    local half = #bytes / 2
    assert.are_not.equal(bytes:sub(1, half), bytes:sub(half + 1))
  end)

  it("masking is its own inverse on long data", function()
    local data = {}
    for i = 1, 10000 do data[i] = string.char(i % 256) end
    data = table.concat(data)
    local key = wsproto.random_bytes(4)
    assert.are.equal(data, wsproto.mask(wsproto.mask(data, key), key))
  end)
end)

describe("frame parser fed bytes", function()
  it("parses a frame delivered one byte at a time", function()
    local p = wsproto.Parser.new()
    local bytes = sframe(0x2, string.rep("z", 300))
    for i = 1, #bytes - 1 do
      p:feed(bytes:sub(i, i))
      assert.is_nil(p:next())
    end
    p:feed(bytes:sub(-1))
    local f = p:next()
    assert.are.equal(0x2, f.opcode)
    assert.are.equal(300, #f.payload)
    assert.is_true(f.fin)
    assert.is_nil(p:next())
  end)

  it("parses several frames from one chunk", function()
    local p = wsproto.Parser.new()
    p:feed(sframe(0x1, "a") .. sframe(0x2, "bb") .. sframe(0x9, ""))
    assert.are.equal("a", p:next().payload)
    assert.are.equal("bb", p:next().payload)
    assert.are.equal(0x9, p:next().opcode)
    assert.is_nil(p:next())
  end)

  it("rejects a 64-bit length with the top bit set", function()
    local p = wsproto.Parser.new()
    p:feed(unhex("827f8000000000000001"))
    local f, code = p:next()
    assert.is_false(f)
    assert.are.equal(1002, code)
  end)

  it("rejects a frame over the size limit before its payload arrives", function()
    local p = wsproto.Parser.new(1000)
    p:feed(unhex("827f0000000100000000"))
    local f, code = p:next()
    assert.is_false(f)
    assert.are.equal(1009, code)
  end)
end)

describe("protocol state", function()
  local function feed(p, bytes)
    return p:receive_data(bytes)
  end

  it("delivers text and binary messages", function()
    local p = wsproto.new()
    local ev = feed(p, sframe(0x1, "héllo") .. sframe(0x2, "\0\1"))
    assert.are.same({ type = "message", kind = "text", data = "héllo" }, ev[1])
    assert.are.same({ type = "message", kind = "binary", data = "\0\1" }, ev[2])
  end)

  it("reassembles fragments with a ping in between (5.4, 5.5)", function()
    local p = wsproto.new()
    local ev = feed(p, sframe(0x2, "ab", false) .. sframe(0x9, "hi") .. sframe(0x0, "cd", false) .. sframe(0x0, "e", true))
    assert.are.equal("ping", ev[1].type)
    assert.are.same({ type = "message", kind = "binary", data = "abcde" }, ev[2])
    local pong = client_frames(p:data_to_send())
    assert.are.equal(0xA, pong[1].opcode)
    assert.are.equal("hi", pong[1].payload)
  end)

  local failures = {
    { "reserved bits (5.2)", function() return sframe(0x2, "x", true, 1) end, 1002 },
    { "reserved opcode 3 (5.2)", function() return sframe(0x3, "") end, 1002 },
    { "reserved control opcode 0xB (5.2)", function() return sframe(0xB, "") end, 1002 },
    { "a masked server frame (5.1)", function() return wsproto.encode_frame(0x2, "x", true, "abcd") end, 1002 },
    { "a fragmented ping (5.5)", function() return sframe(0x9, "x", false) end, 1002 },
    { "a ping over 125 bytes (5.5)", function() return sframe(0x9, string.rep("x", 126)) end, 1002 },
    { "a continuation with nothing to continue (5.4)", function() return sframe(0x0, "x") end, 1002 },
    { "a new message inside a fragmented one (5.4)", function() return sframe(0x1, "a", false) .. sframe(0x1, "b") end, 1002 },
    { "invalid UTF-8 in a text message (8.1)", function() return sframe(0x1, "\255") end, 1007 },
    { "text that cannot become UTF-8, early (8.1)", function() return sframe(0x1, "a\237\160", false) end, 1007 },
    { "a close payload of one byte (5.5.1)", function() return sframe(0x8, "\3") end, 1002 },
    { "close code 1005 on the wire (7.4.1)", function() return sframe(0x8, "\3\237") end, 1002 },
    { "close code 999 (7.4.2)", function() return sframe(0x8, "\3\231") end, 1002 },
    { "a close reason that is not UTF-8 (5.5.1)", function() return sframe(0x8, "\3\232\255") end, 1007 },
  }
  for _, case in ipairs(failures) do
    it("fails the connection on " .. case[1], function()
      local p = wsproto.new()
      local ev = feed(p, case[2]())
      local last = ev[#ev]
      assert.are.equal("fail", last.type)
      assert.are.equal(case[3], last.code)
      local frames = client_frames(p:data_to_send())
      assert.are.equal(0x8, frames[#frames].opcode)
      assert.are.equal(case[3], frames[#frames].payload:byte(1) * 256 + frames[#frames].payload:byte(2))
      -- nothing more is delivered afterwards
      assert.are.same({}, feed(p, sframe(0x2, "late")))
    end)
  end

  it("lets the application answer messages that came just before a violation", function()
    local p = wsproto.new()
    local ev = feed(p, sframe(0x1, "first") .. sframe(0x1, "bad", true, 2) .. sframe(0x9, "late ping"))
    assert.are.same({ { type = "message", kind = "text", data = "first" } }, ev)
    assert.is_true(p:pending())
    assert.is_true(p:send_message("first", "text")) -- still open: the echo goes out first
    ev = feed(p, "")
    assert.are.equal("fail", ev[1].type)
    assert.are.equal(1002, ev[1].code)
    assert.are.equal(1, #ev) -- the ping after the bad frame is never read
    local frames = client_frames(p:data_to_send())
    assert.are.same({ 0x1, 0x8 }, { frames[1].opcode, frames[2].opcode })
  end)

  it("delivers messages before a close that follows them", function()
    local p = wsproto.new()
    local ev = feed(p, sframe(0x2, "m") .. sframe(0x8, "\3\232"))
    assert.are.equal(1, #ev)
    assert.are.equal("message", ev[1].type)
    ev = feed(p, "")
    assert.are.same({ type = "close", code = 1000, reason = "" }, ev[1])
  end)

  it("fails text that cannot become UTF-8 before its frame is complete (8.1)", function()
    local p = wsproto.new()
    local whole = sframe(0x1, "\206\186\225\189\185\244\144\128\128hello")
    local ev = feed(p, whole:sub(1, 8)) -- header + 6 valid bytes: could still be valid
    assert.are.same({}, ev)
    ev = feed(p, whole:sub(9, 10)) -- \244\144 can never start a valid sequence
    assert.are.equal("fail", ev[1].type)
    assert.are.equal(1007, ev[1].code)
  end)

  it("enforces the message size limit across fragments", function()
    local p = wsproto.new({ max_message = 10 })
    local ev = feed(p, sframe(0x2, "123456", false) .. sframe(0x0, "7890ab", true))
    assert.are.equal("fail", ev[#ev].type)
    assert.are.equal(1009, ev[#ev].code)
  end)

  it("answers a server close with the same code (5.5.1, 7.1.2)", function()
    local p = wsproto.new()
    local ev = feed(p, sframe(0x8, "\3\233going away"))
    assert.are.same({ type = "close", code = 1001, reason = "going away" }, ev[1])
    local frames = client_frames(p:data_to_send())
    assert.are.equal(0x8, frames[1].opcode)
    assert.are.equal("\3\233", frames[1].payload)
    assert.are.equal("closed", p.state)
    assert.is_nil((p:send_message("x")))
  end)

  it("drops data after its own close until the server's close (7.1.2)", function()
    local p = wsproto.new()
    p:send_close(1000, "bye")
    local frames = client_frames(p:data_to_send())
    assert.are.equal("\3\232bye", frames[1].payload)
    local ev = feed(p, sframe(0x2, "late") .. sframe(0x8, "\3\232"))
    assert.are.equal(1, #ev)
    assert.are.equal("close", ev[1].type)
    assert.are.equal("", p:data_to_send()) -- no second close frame
  end)

  it("splits outgoing messages into fragments when asked", function()
    local p = wsproto.new({ fragment_size = 4 })
    p:send_message("0123456789", "text")
    local frames = client_frames(p:data_to_send())
    assert.are.equal(3, #frames)
    assert.are.same({ 0x1, 0x0, 0x0 }, { frames[1].opcode, frames[2].opcode, frames[3].opcode })
    assert.are.same({ false, false, true }, { frames[1].fin, frames[2].fin, frames[3].fin })
    assert.are.equal("0123456789", frames[1].payload .. frames[2].payload .. frames[3].payload)
  end)

  it("never raises on random bytes, however they are split", function()
    math.randomseed(7)
    for _ = 1, 300 do
      local p = wsproto.new({ max_message = 4096 })
      for _ = 1, math.random(1, 6) do
        local t = {}
        for i = 1, math.random(0, 40) do t[i] = string.char(math.random(0, 255)) end
        local ok, ev = pcall(p.receive_data, p, table.concat(t))
        assert.is_true(ok, tostring(ev))
        assert.are.equal("table", type(ev))
      end
    end
  end)

  it("validates close codes (7.4.1, 7.4.2 and the IANA registry)", function()
    for _, c in ipairs({ 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
      3000, 3999, 4000, 4999 }) do
      assert.is_true(wsproto.valid_close_code(c), tostring(c))
    end
    for _, c in ipairs({ 0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000 }) do
      assert.is_false(wsproto.valid_close_code(c), tostring(c))
    end
  end)

  for _, code in ipairs({ 1012, 1013, 1014 }) do
    it("accepts a server close with code " .. code .. " and echoes it (7.4.2)", function()
      local p = wsproto.new()
      local ev = feed(p, sframe(0x8, string.char(math.floor(code / 256), code % 256) .. "restart"))
      assert.are.same({ type = "close", code = code, reason = "restart" }, ev[1])
      local frames = client_frames(p:data_to_send())
      assert.are.equal(code, frames[1].payload:byte(1) * 256 + frames[1].payload:byte(2))
    end)
  end

  it("cuts a close reason at 123 bytes on a character boundary (5.5)", function()
    local reason = string.rep("a", 121) .. "é!" -- "é" is bytes 122-123, "!" byte 124
    assert.are.equal(string.rep("a", 121) .. "é", wsproto.close_payload(1000, reason):sub(3))
    reason = string.rep("a", 122) .. "é" -- "é" would be bytes 123-124
    local payload = wsproto.close_payload(1000, reason)
    assert.are.equal(2 + 122, #payload)
    assert.is_true(wsproto.parse_close(payload) == 1000)
    reason = string.rep("a", 121) .. "😀" -- a 4-byte character over the limit
    assert.are.equal(string.rep("a", 121), wsproto.close_payload(1001, reason):sub(3))
    for n = 118, 130 do
      local r = string.rep("x", n - 123 + 120) .. string.rep("标", 3)
      local code, back = wsproto.parse_close(wsproto.close_payload(1000, r))
      assert.are.equal(1000, code)
      assert.is_true(#back <= 123)
    end
  end)

  it("sends no code for 1005 and other codes that may not be on the wire (7.4.1)", function()
    for _, code in ipairs({ 1005, 1006, 1015 }) do
      assert.are.equal("", wsproto.close_payload(code, "bye"))
      local p = wsproto.new()
      p:send_close(code, "bye")
      local frames = client_frames(p:data_to_send())
      assert.are.equal(0x8, frames[1].opcode)
      assert.are.equal("", frames[1].payload)
    end
  end)
end)

describe("opening handshake (4.1)", function()
  it("builds the request with a fresh random key", function()
    local k1, k2 = wsproto.new_key(), wsproto.new_key()
    assert.are_not.equal(k1, k2)
    assert.are.equal(24, #k1)
    local req = wsproto.handshake_request("example.com:8765", "/chat", k1, { ["X-Game"] = "demo" })
    assert.truthy(req:find("^GET /chat HTTP/1%.1\r\n"))
    assert.truthy(req:find("\r\nHost: example.com:8765\r\n", 1, true))
    assert.truthy(req:find("\r\nUpgrade: websocket\r\n", 1, true))
    assert.truthy(req:find("\r\nConnection: Upgrade\r\n", 1, true))
    assert.truthy(req:find("\r\nSec-WebSocket-Key: " .. k1 .. "\r\n", 1, true))
    assert.truthy(req:find("\r\nSec-WebSocket-Version: 13\r\n", 1, true))
    assert.are.equal("\r\nX-Game: demo\r\n\r\n", req:sub(-18))
  end)

  local key = "dGhlIHNhbXBsZSBub25jZQ=="
  local function response(accept, extra)
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      .. "Sec-WebSocket-Accept: " .. accept .. "\r\n" .. (extra or "") .. "\r\n"
  end

  it("accepts the RFC's example response (1.3)", function()
    local headers = assert(wsproto.check_handshake_response(response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), key))
    assert.are.equal("websocket", headers.upgrade)
  end)

  it("rejects a wrong accept value", function()
    local ok, err = wsproto.check_handshake_response(response("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), key)
    assert.is_nil(ok)
    assert.truthy(err:find("Accept"))
  end)

  it("rejects a non-101 status and an unoffered extension", function()
    assert.is_nil((wsproto.check_handshake_response("HTTP/1.1 403 Forbidden\r\n\r\n", key)))
    assert.is_nil((wsproto.check_handshake_response(
      response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Extensions: permessage-deflate\r\n"), key)))
  end)
end)

-- The sans-I/O WebSocket protocol state on bytes alone: message assembly, control frames, the
-- closing handshake, each failure with its close code. Sections are those of RFC 6455.
local wsproto = require("npcbridge.wsproto")
local frame = require("npcbridge.wsproto_frame")
local S = require("spec.support")

local sframe, client_frames = S.server_frame, S.client_frames

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
    { "a masked server frame (5.1)", function() return frame.encode_frame(0x2, "x", true, "abcd") end, 1002 },
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
end)

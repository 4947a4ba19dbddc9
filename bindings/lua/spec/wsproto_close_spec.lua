-- Close frames (npcbridge.wsproto_close): which codes may be on the wire, reasons cut on a
-- character boundary, codes echoed. Sections are those of RFC 6455.
local wsproto = require("npcbridge.wsproto")
local close = require("npcbridge.wsproto_close")
local S = require("spec.support")

local sframe, client_frames = S.server_frame, S.client_frames

describe("close frames (5.5.1, 7.4)", function()
  local function feed(p, bytes)
    return p:receive_data(bytes)
  end

  it("validates close codes (7.4.1, 7.4.2 and the IANA registry)", function()
    for _, c in ipairs({ 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
      3000, 3999, 4000, 4999 }) do
      assert.is_true(close.valid_close_code(c), tostring(c))
    end
    for _, c in ipairs({ 0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000 }) do
      assert.is_false(close.valid_close_code(c), tostring(c))
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
    assert.are.equal(string.rep("a", 121) .. "é", close.close_payload(1000, reason):sub(3))
    reason = string.rep("a", 122) .. "é" -- "é" would be bytes 123-124
    local payload = close.close_payload(1000, reason)
    assert.are.equal(2 + 122, #payload)
    assert.is_true(close.parse_close(payload) == 1000)
    reason = string.rep("a", 121) .. "😀" -- a 4-byte character over the limit
    assert.are.equal(string.rep("a", 121), close.close_payload(1001, reason):sub(3))
    for n = 118, 130 do
      local r = string.rep("x", n - 123 + 120) .. string.rep("标", 3)
      local code, back = close.parse_close(close.close_payload(1000, r))
      assert.are.equal(1000, code)
      assert.is_true(#back <= 123)
    end
  end)

  it("sends no code for 1005 and other codes that may not be on the wire (7.4.1)", function()
    for _, code in ipairs({ 1005, 1006, 1015 }) do
      assert.are.equal("", close.close_payload(code, "bye"))
      local p = wsproto.new()
      p:send_close(code, "bye")
      local frames = client_frames(p:data_to_send())
      assert.are.equal(0x8, frames[1].opcode)
      assert.are.equal("", frames[1].payload)
    end
  end)
end)

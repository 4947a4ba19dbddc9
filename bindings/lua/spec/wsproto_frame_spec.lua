-- WebSocket frames on bytes alone (npcbridge.wsproto_frame): encoding, masking, the parser.
-- Sections are those of RFC 6455.
local wsproto = require("npcbridge.wsproto")
local frame = require("npcbridge.wsproto_frame")
local random = require("npcbridge.random")
local S = require("spec.support")

local unhex, hex = S.unhex, S.hex
local sframe, client_frames = S.server_frame, S.client_frames

describe("frame encoding (5.2)", function()
  it("matches the RFC's unmasked examples (5.7)", function()
    assert.are.equal("810548656c6c6f", hex(frame.encode_frame(0x1, "Hello")))
    assert.are.equal("010348656c", hex(frame.encode_frame(0x1, "Hel", false)))
    assert.are.equal("80026c6f", hex(frame.encode_frame(0x0, "lo", true)))
    assert.are.equal("890548656c6c6f", hex(frame.encode_frame(0x9, "Hello")))
  end)

  it("matches the RFC's masked example (5.7)", function()
    assert.are.equal("818537fa213d7f9f4d5158", hex(frame.encode_frame(0x1, "Hello", true, unhex("37fa213d"))))
  end)

  it("uses the 16-bit and 64-bit length forms", function()
    assert.are.equal("827e0100", hex(frame.encode_frame(0x2, string.rep("x", 256))):sub(1, 8))
    assert.are.equal("827e007e", hex(frame.encode_frame(0x2, string.rep("x", 126))):sub(1, 8))
    assert.are.equal("827d", hex(frame.encode_frame(0x2, string.rep("x", 125))):sub(1, 4))
    assert.are.equal("827f0000000000010000", hex(frame.encode_frame(0x2, string.rep("x", 65536))):sub(1, 20))
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
    local key = random.bytes(4)
    assert.are.equal(data, frame.mask(frame.mask(data, key), key))
  end)
end)

describe("frame parser fed bytes", function()
  it("parses a frame delivered one byte at a time", function()
    local p = frame.Parser.new()
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
    local p = frame.Parser.new()
    p:feed(sframe(0x1, "a") .. sframe(0x2, "bb") .. sframe(0x9, ""))
    assert.are.equal("a", p:next().payload)
    assert.are.equal("bb", p:next().payload)
    assert.are.equal(0x9, p:next().opcode)
    assert.is_nil(p:next())
  end)

  it("rejects a 64-bit length with the top bit set", function()
    local p = frame.Parser.new()
    p:feed(unhex("827f8000000000000001"))
    local f, code = p:next()
    assert.is_false(f)
    assert.are.equal(1002, code)
  end)

  it("rejects a frame over the size limit before its payload arrives", function()
    local p = frame.Parser.new(1000)
    p:feed(unhex("827f0000000100000000"))
    local f, code = p:next()
    assert.is_false(f)
    assert.are.equal(1009, code)
  end)
end)

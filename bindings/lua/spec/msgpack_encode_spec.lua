-- The msgpack encoder (npcbridge.msgpack_encode): smallest str/bin/array/map forms, arrays
-- told from maps, canonical key order, error values.
local msgpack = require("npcbridge.msgpack")
local S = require("spec.support")

describe("msgpack encoder", function()
  local function hex(v) return S.hex(assert(msgpack.encode(v))) end

  it("encodes str and bin lengths in their smallest form", function()
    assert.are.equal("a0", hex(""))
    assert.are.equal("d920", hex(string.rep("a", 32)):sub(1, 4))
    assert.are.equal("da0100", hex(string.rep("a", 256)):sub(1, 6))
    assert.are.equal("db00010000", hex(string.rep("a", 65536)):sub(1, 10))
    assert.are.equal("c40100", hex(msgpack.bin("\0")))
    assert.are.equal("c50100", hex(msgpack.bin(string.rep("x", 256))):sub(1, 6))
    assert.are.equal("c600010000", hex(msgpack.bin(string.rep("x", 65536))):sub(1, 10))
  end)

  it("tells arrays from maps", function()
    assert.are.equal("80", hex({}))
    assert.are.equal("90", hex(msgpack.array({})))
    assert.are.equal("80", hex(msgpack.map({})))
    assert.are.equal("920102", hex({ 1, 2 }))
    assert.are.equal("82a161c3a162c2", hex({ a = true, b = false }))
    assert.are.equal("820101030a", hex({ [1] = 1, [3] = 10 }))
    assert.are.equal("93c0c001", hex(msgpack.array({ msgpack.null, msgpack.null, 1 })))
    assert.are.equal("dc0010", hex(msgpack.array({ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 })):sub(1, 6))
  end)

  it("sorts map keys by their bytes", function()
    assert.are.equal("83a141c3a161c3a2c3a4c3", hex({ ["ä"] = true, a = true, A = true }))
  end)

  it("returns an error value for what msgpack cannot hold", function()
    local bytes, err = msgpack.encode({ f = print })
    assert.is_nil(bytes)
    assert.truthy(err:find("cannot encode a function"))
    local loop = {}
    loop.self = loop
    bytes, err = msgpack.encode(loop)
    assert.is_nil(bytes)
    assert.truthy(err:find("deeper"))
  end)

  it("refuses to write a string that is not UTF-8 as str", function()
    for _, bad in ipairs({ "\255", "ok\192\128", "\237\160\128", "\226\130" }) do
      local bytes, err = msgpack.encode({ text = bad })
      assert.is_nil(bytes)
      assert.truthy(err:find("not valid UTF-8", 1, true), err)
    end
    local bytes, err = msgpack.encode({ ["\255"] = 1 }) -- keys are strings too
    assert.is_nil(bytes)
    assert.truthy(err:find("not valid UTF-8", 1, true))
    assert.are.equal("c401ff", hex(msgpack.bin("\255"))) -- bytes go in a bin
  end)
end)

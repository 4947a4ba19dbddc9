-- Numbers to msgpack bytes and back (npcbridge.msgpack_numbers): smallest int forms, exact
-- int64 on every Lua, float64 written, float32 read.
local msgpack = require("npcbridge.msgpack")
local S = require("spec.support")

describe("msgpack numbers", function()
  local function hex(v) return S.hex(assert(msgpack.encode(v))) end

  it("encodes integers in their smallest form", function()
    assert.are.equal("00", hex(0))
    assert.are.equal("7f", hex(127))
    assert.are.equal("cc80", hex(128))
    assert.are.equal("cd0100", hex(256))
    assert.are.equal("ce00010000", hex(65536))
    assert.are.equal("cf0000000100000000", hex(4294967296))
    assert.are.equal("ff", hex(-1))
    assert.are.equal("e0", hex(-32))
    assert.are.equal("d0df", hex(-33))
    assert.are.equal("d1ff7f", hex(-129))
    assert.are.equal("d2ffff7fff", hex(-32769))
    assert.are.equal("d3ffffff0000000000", hex(-1099511627776))
  end)

  it("encodes every integer in [-2^63, -2^31) exactly, on one-number Luas too", function()
    -- -3000000000 + 2^64 needs 64 significant bits: as a double it would round to ...fe00
    assert.are.equal("d3ffffffff4d2fa200", hex(-3000000000))
    assert.are.equal("d3ffffffff7fffffff", hex(-2147483649))
    assert.are.equal("d3ffffff0000000001", hex(-1099511627775))
    assert.are.equal("d3ffe0000000000001", hex(-9007199254740991)) -- -(2^53 - 1)
    assert.are.equal("d3fff0000000000001", hex(-4503599627370495))
    if not msgpack.has_integers then
      assert.are.equal("d3ffe0000000000000", hex(-2 ^ 53))
      assert.are.equal("d38000000000000000", hex(-2 ^ 63))
      assert.are.equal("d3ff00000000000800", hex(-2 ^ 56 + 2048)) -- beyond 2^53: integral doubles
    end
    for _, x in ipairs({ -3000000000, -2147483649, -4294967297, -123456789012345, -9007199254740991 }) do
      assert.are.equal(x, msgpack.decode(assert(msgpack.encode(x))))
    end
  end)

  it("encodes floats as float64", function()
    assert.are.equal("cb3ff8000000000000", hex(1.5))
    assert.are.equal("cbbfd0000000000000", hex(-0.25))
    assert.are.equal("cb7ff0000000000000", hex(math.huge))
    assert.are.equal("cbfff0000000000000", hex(-math.huge))
    assert.are.equal("cb0000000000000001", hex(4.9406564584124654e-324))
    assert.are.equal("cb000fffffffffffff", hex(2.2250738585072009e-308))
    assert.are.equal("cb7fefffffffffffff", hex(1.7976931348623157e308))
    assert.are.equal("cb3fb999999999999a", hex(0.1))
    local nan = msgpack.decode(S.unhex(hex(0 / 0)))
    assert.is_true(nan ~= nan)
    if msgpack.has_integers then
      assert.are.equal("cb4000000000000000", hex(2.0)) -- a float stays a float on Lua 5.3+
    else
      assert.are.equal("02", hex(2.0)) -- documented: integral numbers are integers on 5.1/LuaJIT
    end
  end)

  it("round-trips floats exactly", function()
    for _, x in ipairs({ 1e300, -1e-300, 3.141592653589793, 1 / 3, 5e-324, 123456.789, 2 ^ 60 + 0.0 }) do
      local back = msgpack.decode(assert(msgpack.encode(x)))
      assert.are.equal(x, back)
    end
  end)

  it("reads float32 including specials", function()
    assert.are.equal(1.5, msgpack.decode(S.unhex("ca3fc00000")))
    assert.are.equal(-math.huge, msgpack.decode(S.unhex("caff800000")))
    assert.are.equal(2 ^ -149, msgpack.decode(S.unhex("ca00000001")))
  end)
end)

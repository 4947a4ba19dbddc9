-- The msgpack codec against the golden vectors in tests/vectors/ (the wire contract).
local msgpack = require("npcbridge.msgpack")
local S = require("spec.support")

local index = S.json_file(S.vectors_dir .. "/index.json")

describe("msgpack message vectors", function()
  for _, kind in ipairs(index.messages) do
    it("decodes and re-encodes " .. kind .. ".msgpack byte-exactly", function()
      local raw = S.read(S.vectors_dir .. "/" .. kind .. ".msgpack")
      local value, err = msgpack.decode(raw)
      assert.is_nil(err)
      assert.is_true(msgpack.is_map(value))
      assert.are.equal(kind, value.type)
      local expected = S.untag(S.json_file(S.vectors_dir .. "/" .. kind .. ".json"))
      local ok, where = S.same(value, expected)
      assert(ok, "differs from " .. kind .. ".json at " .. tostring(where))
      local again = assert(msgpack.encode(value))
      assert.are.equal(S.hex(raw), S.hex(again))
      -- the readable twin encodes to the same bytes too
      assert.are.equal(S.hex(raw), S.hex(assert(msgpack.encode(expected))))
    end)
  end
end)

describe("msgpack codec cases", function()
  local cases = S.json_file(S.vectors_dir .. "/" .. index.codec).cases
  for _, case in ipairs(cases) do
    local exact64 = msgpack.has_integers or not case.needs_int64
    it("reads " .. case.name .. (exact64 and "" or " (approximately: no 64-bit integers here)"), function()
      local value, err = msgpack.decode(S.unhex(case.hex))
      assert.is_nil(err)
      local expected = S.untag(case.value)
      if exact64 then
        local ok, where = S.same(value, expected)
        assert(ok, "decoded value differs at " .. tostring(where))
        assert.are.equal(case.canonical_hex, S.hex(assert(msgpack.encode(value))))
      else
        -- documented behaviour on Lua 5.1 / LuaJIT: the nearest double
        assert.are.equal("number", type(value))
        assert.are.equal(tonumber(expected["$int"]), value)
      end
    end)
  end
end)

describe("msgpack invalid input", function()
  local cases = S.json_file(S.vectors_dir .. "/" .. index.invalid).cases
  for _, case in ipairs(cases) do
    it("rejects " .. case.name .. " with an error value", function()
      local value, err = msgpack.decode(S.unhex(case.hex))
      assert.is_nil(value)
      assert.are.equal("string", type(err))
      assert.truthy(err:find("^msgpack decode: "))
    end)
  end

  it("never raises on any truncation of every message vector", function()
    for _, kind in ipairs(index.messages) do
      local raw = S.read(S.vectors_dir .. "/" .. kind .. ".msgpack")
      for n = 0, #raw - 1 do
        local value, err = msgpack.decode(raw:sub(1, n))
        assert.is_nil(value)
        assert.are.equal("string", type(err))
      end
    end
  end)

  it("never raises on random bytes", function()
    math.randomseed(42)
    for _ = 1, 2000 do
      local t = {}
      for i = 1, math.random(1, 24) do t[i] = string.char(math.random(0, 255)) end
      local ok, value, err = pcall(msgpack.decode, table.concat(t))
      assert.is_true(ok)
      assert(value ~= nil or type(err) == "string")
    end
  end)

  it("rejects nesting deeper than MAX_DEPTH instead of overflowing the stack", function()
    local value, err = msgpack.decode(string.rep("\145", 100000) .. "\192")
    assert.is_nil(value)
    assert.truthy(err:find("deeper"))
  end)

  it("rejects ext types and non-string input", function()
    assert.is_nil((msgpack.decode("\212\1\0")))
    assert.is_nil((msgpack.decode(42)))
  end)
end)

describe("msgpack encoder", function()
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

  it("validates UTF-8", function()
    assert.is_true(msgpack.valid_utf8("Grüß 标 😀"))
    assert.is_false(msgpack.valid_utf8("\192\128")) -- overlong
    assert.is_false(msgpack.valid_utf8("\237\160\128")) -- surrogate
    assert.is_false(msgpack.valid_utf8("\244\144\128\128")) -- above U+10FFFF
    assert.is_false(msgpack.valid_utf8("\226\130")) -- truncated
  end)
end)

-- The msgpack codec against the golden vectors in tests/vectors/ (the wire contract), through
-- the public API of npcbridge.msgpack.
local msgpack = require("npcbridge.msgpack")
local S = require("spec.support")

local index = S.json_file(S.vectors_dir .. "/index.json")

-- `name`.msgpack decodes to `name`.json (a message of type `kind`) and re-encodes byte-exactly.
local function check_vector(name, kind)
  local raw = S.read(S.vectors_dir .. "/" .. name .. ".msgpack")
  local value, err = msgpack.decode(raw)
  assert.is_nil(err)
  assert.is_true(msgpack.is_map(value))
  assert.are.equal(kind, value.type)
  local expected = S.untag(S.json_file(S.vectors_dir .. "/" .. name .. ".json"))
  local ok, where = S.same(value, expected)
  assert(ok, "differs from " .. name .. ".json at " .. tostring(where))
  local again = assert(msgpack.encode(value))
  assert.are.equal(S.hex(raw), S.hex(again))
  -- the readable twin encodes to the same bytes too
  assert.are.equal(S.hex(raw), S.hex(assert(msgpack.encode(expected))))
end

describe("msgpack message vectors", function()
  for _, kind in ipairs(index.messages) do
    it("decodes and re-encodes " .. kind .. ".msgpack byte-exactly", function()
      check_vector(kind, kind)
    end)
  end
  -- further shapes of a message type (an error that refuses, one that lists versions, ...)
  assert(index.variants, "index.json lists no variants")
  for _, variant in ipairs(index.variants) do
    it("decodes and re-encodes the variant " .. variant.name .. ".msgpack byte-exactly", function()
      check_vector(variant.name, variant.type)
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

describe("msgpack UTF-8 check", function()
  it("validates UTF-8", function()
    assert.is_true(msgpack.valid_utf8("Grüß 标 😀"))
    assert.is_false(msgpack.valid_utf8("\192\128")) -- overlong
    assert.is_false(msgpack.valid_utf8("\237\160\128")) -- surrogate
    assert.is_false(msgpack.valid_utf8("\244\144\128\128")) -- above U+10FFFF
    assert.is_false(msgpack.valid_utf8("\226\130")) -- truncated
  end)
end)

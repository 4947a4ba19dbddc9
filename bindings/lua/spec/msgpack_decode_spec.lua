-- The msgpack decoder (npcbridge.msgpack_decode): bad input gives an error value, never a raise.
local msgpack = require("npcbridge.msgpack")
local S = require("spec.support")

local index = S.json_file(S.vectors_dir .. "/index.json")

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
    local names = {}
    for _, kind in ipairs(index.messages) do names[#names + 1] = kind end
    for _, variant in ipairs(index.variants) do names[#names + 1] = variant.name end
    for _, name in ipairs(names) do
      local raw = S.read(S.vectors_dir .. "/" .. name .. ".msgpack")
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

-- Whole messages in canonical form (tests/vectors/canonical.json): the protocol's float fields
-- written as float64 by field name whatever the number, unset fields left out, map keys in UTF-8
-- byte order; the explicit `msgpack.float` marker; the client writing those bytes itself.
local msgpack = require("npcbridge.msgpack")
local npcbridge = require("npcbridge")
local S = require("spec.support")

local doc = S.json_file(S.vectors_dir .. "/canonical.json")

local is_float_field = {}
for _, name in ipairs(doc.float_fields) do is_float_field[name] = true end

-- An integral number as an integer where Lua has them (what `temperature = 1` gives on 5.3+).
local function as_integer(x)
  return math.tointeger and math.tointeger(x) or x
end

-- A message as a game holds it: JSON null is a field left unset (absent); a tagged float is a
-- plain number, `msgpack.float(x)` when `how` is "marker", or an integer under a protocol float
-- field when `how` is "integers" and the value is whole.
local function held(v, how, key)
  if type(v) ~= "table" or v == msgpack.null then return v end
  if msgpack.is_map(v) then
    if v["$float"] ~= nil then
      local x = v["$float"] + 0.0
      if how == "marker" then return msgpack.float(x) end
      if how == "integers" and is_float_field[key] and x == math.floor(x) then return as_integer(x) end
      return x
    end
    local t = msgpack.map({})
    for k, x in pairs(v) do
      if x ~= msgpack.null then t[k] = held(x, how, k) end
    end
    return t
  end
  local t = msgpack.array({})
  for i = 1, #v do t[i] = held(v[i], how, key) end
  return t
end

local function hex(v) return S.hex(assert(msgpack.encode(v))) end

describe("canonical messages", function()
  it("msgpack.FLOAT_FIELDS names the protocol floats of canonical.json, no more, no less", function()
    local listed = 0
    for name in pairs(is_float_field) do
      assert.is_true(msgpack.FLOAT_FIELDS[name], name)
      listed = listed + 1
    end
    local known = 0
    for _ in pairs(msgpack.FLOAT_FIELDS) do known = known + 1 end
    assert.are.equal(listed, known)
  end)

  for _, case in ipairs(doc.cases) do
    it("encodes " .. case.name, function()
      assert.are.equal(case.hex, hex(held(case.message, "numbers")))
    end)

    it("encodes " .. case.name .. " (whole numbers under float fields as integers)", function()
      assert.are.equal(case.hex, hex(held(case.message, "integers")))
    end)

    it("encodes " .. case.name .. " (every float marked with msgpack.float)", function()
      assert.are.equal(case.hex, hex(held(case.message, "marker")))
    end)

    it("decodes " .. case.name .. " and re-encodes it byte-exactly", function()
      local value, err = msgpack.decode(S.unhex(case.hex))
      assert.is_nil(err)
      local ok, where = S.same(value, held(case.message, "numbers"))
      assert(ok, "decoded value differs at " .. tostring(where))
      assert.are.equal(case.hex, hex(value))
    end)
  end
end)

describe("msgpack.float", function()
  it("writes float64 whatever the number, in any field", function()
    assert.are.equal("cb4000000000000000", hex(msgpack.float(2)))
    assert.are.equal("cb0000000000000000", hex(msgpack.float(0)))
    assert.are.equal("cbc08f400000000000", hex(msgpack.float(-1000)))
    assert.are.equal("cb3ff8000000000000", hex(msgpack.float(1.5)))
    assert.are.equal("81a6776569676874cb4008000000000000", hex({ weight = msgpack.float(3) }))
    assert.is_true(msgpack.is_float(msgpack.float(3)))
    assert.is_false(msgpack.is_float(3))
  end)

  it("decodes as a plain number", function()
    assert.are.equal(2, msgpack.decode(assert(msgpack.encode(msgpack.float(2)))))
    assert.are.equal("number", type(msgpack.decode(assert(msgpack.encode(msgpack.float(2))))))
  end)

  it("holds numbers only", function()
    assert.has_error(function() msgpack.float("2") end)
    assert.has_error(function() msgpack.float(nil) end)
  end)

  it("leaves numbers outside the float fields as they are", function()
    assert.are.equal("81a4676f6c640c", hex({ gold = 12 }))
    assert.are.equal("81a2696404", hex({ id = 4 }))
    assert.are.equal("81a26174a178", hex({ at = "x" })) -- a float field name holding a string
  end)
end)

describe("the client writes canonical messages", function()
  -- A client that believes it is connected and keeps the bytes it sends.
  local function capturing_client()
    local c = npcbridge.new({ url = "ws://127.0.0.1:1/", reconnect = false })
    local sent = {}
    c.state = "ready"
    c.ws = { send = function(_, bytes) sent[#sent + 1] = bytes; return true end }
    return c, sent
  end

  for _, case in ipairs(doc.cases) do
    if case.message.type == "say" then
      it("say() writes the bytes of " .. case.name, function()
        local c, sent = capturing_client()
        local opts = held(case.message, "integers")
        local npc, player, text = opts.npc, opts.player, opts.text
        opts.type, opts.npc, opts.player, opts.text = nil, nil, nil, nil
        assert(c:say(npc, player, text, opts))
        assert.are.equal(1, #sent)
        assert.are.equal(case.hex, S.hex(sent[1]))
      end)
    end
  end
end)

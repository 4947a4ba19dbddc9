-- The mod's pure parts under plain Lua (5.1, 5.4, LuaJIT), no engine: the shared flow vectors
-- (tests/vectors/flows.json) fed to requests.lua, checked through the callbacks a mod sees; and
-- the JSON encoder's number, key and empty-table rules.
local S = dofile("../lua/spec/support.lua")

local function load_mod(file, ...)
  return assert(loadfile("npcbridge/" .. file .. ".lua"))(...)
end

local Requests = load_mod("requests", load_mod("router"), load_mod("errors"))
local json = load_mod("json", load_mod("msgpack_types"))

local function guard(fn, ...)
  if fn then fn(...) end
end

-- JSON keys are strings; a key made of digits only stands for an integer id.
local function id_of(key)
  if key:match("^%d+$") then
    return math.tointeger and math.tointeger(tonumber(key)) or tonumber(key)
  end
  return key
end

-- feed a flow's frames; what each request's callbacks heard, by id
local function run(flow)
  local heard, general, at = {}, {}, nil
  local function hear(id)
    heard[id] = heard[id] or { deltas = {} }
    return heard[id]
  end
  local callbacks = {
    on_delta = function(text, _, msg) local h = hear(msg.id) h.deltas[#h.deltas + 1] = text end,
    on_done = function(_, msg) hear(msg.id).done = { at = at, msg = msg } end,
    on_error = function(err) hear(err.id).error = { at = at, err = err } end,
  }
  local r = Requests.new(guard, function(err) general[#general + 1] = at end)
  for key, mtype in pairs(flow.requests) do r:add(id_of(key), mtype, callbacks) end
  for i, frame in ipairs(flow.frames) do
    at = i - 1
    r:dispatch(S.untag(frame))
  end
  return heard, general, r
end

describe("requests.lua with the flow vectors", function()
  local flows = S.json_file(S.vectors_dir .. "/flows.json").flows
  it("are there", function() assert.is_true(#flows >= 10) end)

  for _, flow in ipairs(flows) do
    it(flow.name, function()
      local heard, general, r = run(flow)
      for key, want in pairs(flow.expect) do
        local id = id_of(key)
        local h = heard[id] or { deltas = {} }
        if want.ends == "open" then
          assert.is_true(r:has(id), key .. " must still be waiting")
          assert.is_nil(h.done or h.error)
        elseif want.ends == "error" then
          assert(h.error, key .. " did not end with an error")
          assert.is_nil(h.done)
          assert.are.equal(want.at, h.error.at)
          assert.are.equal(want.code, h.error.err.code)
          assert.are.equal(want.text, h.error.err.partial)
        else
          assert(h.done, key .. " did not end")
          assert.is_nil(h.error)
          assert.are.equal(want.at, h.done.at)
          if want.ends == "reply" then
            assert.are.equal(want.finish, h.done.msg.finish)
            assert.are.equal(want.text, h.done.msg.text)
            assert.are.equal(want.deltas, table.concat(h.deltas))
          else
            assert.are.equal(want.answer_type, h.done.msg.type)
          end
        end
      end
      -- stray errors reach the general error callback; no other frame does
      local stray_errors = {}
      for _, i in ipairs(flow.stray) do
        if flow.frames[i + 1].type == "error" then stray_errors[#stray_errors + 1] = i end
      end
      assert.are.same(stray_errors, general)
    end)
  end
end)

describe("json.lua", function()
  it("writes integers as integers and the protocol floats with a fraction", function()
    assert.are.equal('{"id":7,"max_tokens":80,"temperature":1.0}',
      json.encode({ id = 7, max_tokens = 80, temperature = 1 }))
    assert.are.equal('{"cost_usd":1.2e-05,"x":0.5}', json.encode({ x = 0.5, cost_usd = 0.000012 }))
    assert.are.equal('{"big":12345678901}', json.encode({ big = 12345678901 }))
  end)

  it("writes an empty table as an object and arrays in order", function()
    assert.are.equal('{"args":{},"list":[1,"two",true]}',
      json.encode({ args = {}, list = { 1, "two", true } }))
  end)

  it("escapes quotes, backslashes and control characters, keeps UTF-8", function()
    assert.are.equal('"a\\"b\\\\c\\n\\u0001 Grüß"', json.encode('a"b\\c\n\1 Grüß'))
  end)

  it("refuses what JSON cannot hold", function()
    local function refused(value)
      local text, err = json.encode(value)
      assert.is_nil(text)
      assert.is_string(err)
    end
    refused({ x = 0 / 0 })
    refused({ x = math.huge })
    refused({ 1, x = 2 })
    refused({ f = print })
    local cycle = {}
    cycle.self = cycle
    refused(cycle)
  end)
end)

describe("requests.lua fail_all", function()
  it("ends every request with the error, except the kept types", function()
    local ended = {}
    local function callbacks(name)
      return { on_error = function(err) ended[name] = err end }
    end
    local r = Requests.new(guard, nil)
    r:add("s1", "say", callbacks("s1"))
    r:add("d1", "npc.define", callbacks("d1"))
    r:fail_all("session_lost", "gone", true, { ["npc.define"] = true })
    assert.are.equal("session_lost", ended.s1.code)
    assert.are.equal("s1", ended.s1.id)
    assert.is_true(ended.s1.retryable)
    assert.is_nil(ended.d1)
    assert.is_true(r:has("d1"))
    assert.is_false(r:has("s1"))
    r:dispatch({ type = "ok", id = "d1" })
    assert.is_false(r:has("d1"))
  end)
end)

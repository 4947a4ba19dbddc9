-- NPC state (docs/state.md) from the Lua client: the shared state vectors fed to a client
-- without a server, then npc.state, thresholds, reply.end.state and world events against the
-- test stack (a real server with the fake upstream behind it).
local npcbridge = require("npcbridge")
local msgpack = require("npcbridge.msgpack")
local L = require("spec.live")
local S = require("spec.support")
local socket = require("socket")

local GUARD = {
  name = "Hilde",
  description = "A town guard at the market gate.",
  state = { trust = 10, volatility = 1.0 },
}

-- The vector's msgpack bytes, decoded by the client's own codec.
local function vector(name)
  local msg = assert(msgpack.decode(S.read(S.vectors_dir .. "/" .. name .. ".msgpack")))
  assert.is_true(S.same(msg, S.json_file(S.vectors_dir .. "/" .. name .. ".json")))
  return msg
end

describe("state vectors", function()
  local function fed_client()
    local c = npcbridge.new({})
    c.state = "ready"
    c.ws = { send = function() return true end }
    return c
  end

  it("a crossing frame updates what is known and calls on_change and on_crossed", function()
    local c = fed_client()
    local changes, crossings = {}, {}
    c.states.on_change = function(npc, player, state) changes[#changes + 1] = { npc, player, state } end
    c.states.on_crossed = function(_, _, crossing) crossings[#crossings + 1] = crossing end
    c:_route(vector("state-crossed"))
    local known = c.states:of("guard", "p1")
    assert.are.equal("angry", known.mood)
    assert.are.equal(-55.5, known.relationship.trust)
    assert.are.equal(1, #changes)
    assert.are.equal(2, #crossings)
    assert.are.equal("hostile", crossings[1].name)
    assert.are.equal("entered", crossings[1].direction)
    assert.are.equal("changed", crossings[2].direction)
    c:_route(vector("state-crossed")) -- the same values again: no change, the crossings again
    assert.are.equal(1, #changes)
    assert.are.equal(4, #crossings)
  end)

  it("reply.end.state is the state of the say's player; the answer to npc.state too", function()
    local c = fed_client()
    local done
    assert(c:say("guard", "p1", "Here, take this gold.", { id = "t-9", on_done = function(r) done = r end }))
    c:_route(vector("reply.end-state"))
    assert.are.equal("t-9", done.id)
    assert.are.equal(13.5, c.states:of("guard", "p1").relationship.familiarity)
    local answer
    assert(c.states:nudge("guard", "p1", { trust = -15 }, { id = 20, on_reply = function(m) answer = m end }))
    c:_route(vector("state"))
    assert.are.equal("nudge", answer.reason)
    assert.are.equal(-5.5, c.states:of("guard", "p1").relationship.trust)
  end)

  it("a world event's reactions reach on_reaction, its ok ends it", function()
    local c = fed_client()
    local frames, ok = {}, nil
    assert(c:world_event({ id = 21, text = "p1 stole an apple", npcs = { "guard", "merchant" } }, {
      on_reaction = function(m) frames[#frames + 1] = m.type end,
      on_reply = function(m) ok = m end,
    }))
    for _, flow in ipairs(S.json_file(S.vectors_dir .. "/flows.json").flows) do
      if flow.name:find("world.event", 1, true) then
        for _, frame in ipairs(flow.frames) do c:_route(frame) end
      end
    end
    assert.are.same({ "reply.start", "reply.delta", "reply.end" }, frames)
    assert.are.equal("guard", ok.reactions[1].npc)
  end)
end)

if not L.ws_url then
  describe("NPC state against a server", function()
    pending("NPCBRIDGE_WS_URL is not set (run through tests/test_lua.py)")
  end)
  return
end

-- A player no earlier run (of any interpreter, against the same server) has met.
local seq = 0
local function fresh_player()
  seq = seq + 1
  return string.format("lua-%s-%d-%d", _VERSION:gsub("%W", ""), math.floor(socket.gettime() * 1e6) % 1e9, seq)
end

-- A connected client with a guard of its own (the mood is the NPC's, shared by every player:
-- each test, and each interpreter's run, gets a guard nobody else has moved).
local function connected_client()
  local c = npcbridge.new({ url = L.ws_url })
  finally(function() c:close() end)
  assert(c:connect())
  assert(L.pump({ c }, function() return c:is_ready() end, 10), "no welcome from " .. L.ws_url)
  local defined
  local guard = fresh_player():gsub("^lua", "guard")
  c:define_npc(guard, GUARD, { on_reply = function() defined = true end })
  assert(L.pump({ c }, function() return defined end, 10), "npc.define: no answer")
  return c, guard
end

-- Run `start(callbacks)` and pump until its on_reply or on_error; returns (reply, err).
local function answer(c, start)
  local reply, err
  start({ on_reply = function(m) reply = m end, on_error = function(e) err = e end })
  assert(L.pump({ c }, function() return reply ~= nil or err ~= nil end, 15), "no answer")
  return reply, err
end

describe("NPC state against a server", function()
  it("gets, sets and watches; a crossing reaches on_crossed", function()
    local c, guard = connected_client()
    local player = fresh_player()
    local got = assert(answer(c, function(cb) c.states:get(guard, player, cb) end))
    assert.are.equal(10, got.relationship.trust)
    assert.are.equal("neutral", got.mood)
    local watching = assert(answer(c, function(cb)
      c.states:watch(guard, player, { { key = "trust", below = 0, name = "wary" } }, cb)
    end))
    assert.are.equal("wary", watching.watching[1])
    local crossed
    c.states.on_crossed = function(npc, p, crossing) crossed = { npc, p, crossing } end
    local set = assert(answer(c, function(cb) c.states:set(guard, player, { trust = -30 }, cb) end))
    assert.are.equal(-30, set.relationship.trust)
    assert(L.pump({ c }, function() return crossed ~= nil end, 5), "no crossing frame")
    assert.are.equal(guard, crossed[1])
    assert.are.equal(player, crossed[2])
    assert.are.equal("entered", crossed[3].direction)
    local _, err = answer(c, function(cb) c.states:set(guard, nil, { trust = 5 }, cb) end)
    assert.are.equal("bad_request", err.code)
  end)

  it("reply.end carries the state after the say's effects", function()
    local c, guard = connected_client()
    local player = fresh_player()
    local done
    c:say(guard, player, "[[reply:Move along.]] Let me pass.", {
      effects = { trust = -5 }, on_done = function(r) done = r end,
    })
    assert(L.pump({ c }, function() return done ~= nil end, 15), "no reply.end")
    assert.are.equal(5, done.state.relationship.trust)
    assert.are.equal(1, done.state.relationship.familiarity)
    assert.are.equal(1, c.states:of(guard, player).relationship.familiarity)
  end)

  it("a world event streams reactions and ends with ok", function()
    local c, guard = connected_client()
    local player = fresh_player()
    local reactions = {}
    local ok = assert(answer(c, function(cb)
      c:world_event({ text = player .. " stole an apple", npc = guard, player = player, react = true }, {
        on_reaction = function(m) reactions[#reactions + 1] = m.type end,
        on_reply = cb.on_reply, on_error = cb.on_error,
      })
    end))
    assert.are.equal("ok", ok.type)
    assert.are.equal(guard, ok.npcs[1])
    assert.are.equal("reply.start", reactions[1])
    assert.are.equal("reply.end", reactions[#reactions])
    local got = assert(answer(c, function(cb) c.states:get(guard, player, cb) end))
    assert.are.equal(-10, got.relationship.trust) -- 10 - 20: a theft the guard saw
  end)
end)

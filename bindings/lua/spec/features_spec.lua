-- Gameplay features (docs/features.md) from the Lua client, through its generic request API,
-- against the test stack (a real server with the fake upstream behind it). The fake upstream's
-- directives ride in the player text (or the quest theme): [[reply:...]], [[json:...]],
-- [[tool:NAME:{...}]]. The stack's moderation plugin blocks the word "grobblewort".
local npcbridge = require("npcbridge")
local L = require("spec.live")

if not L.ws_url then
  describe("gameplay features", function()
    pending("NPCBRIDGE_WS_URL is not set (run through tests/test_lua.py)")
  end)
  return
end

local function connected_client(opts)
  opts = opts or {}
  opts.url = L.ws_url
  local c = npcbridge.new(opts)
  finally(function() c:close() end)
  assert(c:connect())
  assert(L.pump({ c }, function() return c:is_ready() end, 10), "no welcome from " .. L.ws_url)
  return c
end

--- Send a request and pump until it is answered; returns (reply, err).
local function ask(c, mtype, fields, extra)
  local reply, err
  local callbacks = extra or {}
  callbacks.on_reply = function(m) reply = m end
  callbacks.on_error = function(e) err = e end
  c:request(mtype, fields, callbacks)
  assert(L.pump({ c }, function() return reply ~= nil or err ~= nil end, 15), mtype .. ": no answer")
  return reply, err
end

local function has(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

describe("gameplay features", function()
  it("announces quest, barks, scenes, actions and emotes", function()
    local c = connected_client()
    for _, f in ipairs({ "quest", "barks", "scenes", "actions", "emotes" }) do
      assert.is_true(has(c.welcome.features, f), f)
    end
  end)

  it("generates a validated quest", function()
    local c = connected_client()
    local quest = '{"title": "Rats in the Cellar", "description": "Rats ate the cheese.", '
      .. '"objectives": ["Find the cellar key", "Kill the rats"], "rewards": ["30 gold"], "xp": 50}'
    local answer, err = ask(c, "quest.generate", {
      theme = "rats [[json:" .. quest .. "]]",
      difficulty = "easy",
      npc = "blacksmith",
      fields = { xp = { type = "integer", minimum = 0 } },
    })
    assert.is_nil(err)
    assert.are.equal("quest", answer.type)
    assert.are.equal("json", answer.source)
    assert.are.equal("Rats in the Cellar", answer.quest.title)
    assert.are.equal(2, #answer.quest.objectives)
    assert.are.equal("Kill the rats", answer.quest.objectives[2])
    assert.are.equal("30 gold", answer.quest.rewards[1])
    assert.are.equal(50, answer.quest.xp)
    assert.are.equal("easy", answer.quest.difficulty)
    assert.are.equal("blacksmith", answer.quest.giver)
  end)

  it("never returns an unvalidated quest", function()
    local c = connected_client()
    local answer, err = ask(c, "quest.generate", { theme = "nothing [[json:{}]]", difficulty = "hard" })
    assert.is_nil(answer)
    assert.are.equal("upstream_error", err.code)
  end)

  it("reports an invalid tool call instead of acting on it, and still streams the text", function()
    local c = connected_client()
    local defined
    c:define_npc("lua_shop", {
      name = "Mira",
      actions = { {
        name = "give_item",
        description = "Give the player an item.",
        parameters = { type = "object", properties = { item = { type = "string" } }, required = { "item" } },
      } },
    }, { on_reply = function(m) defined = m end })
    assert.is_true(L.pump({ c }, function() return defined ~= nil end, 10))
    local actions, deltas, done = {}, {}, nil
    c:say("lua_shop", "lua-p1", '[[reply:Let me look.]] [[tool:give_item:{"colour": "red"}]]', {
      on_action = function(m) actions[#actions + 1] = m end,
      on_delta = function(t) deltas[#deltas + 1] = t end,
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    })
    assert.is_true(L.pump({ c }, function() return done ~= nil end, 10))
    assert.are.equal(0, #actions)
    assert.are.equal("Let me look.", done.text)
    assert.are.equal("Let me look.", table.concat(deltas))
    assert.are.equal("give_item", done.rejected_actions[1].name)
    assert.is_nil(done.actions)
  end)

  it("turns stage directions into emotes and cuts lines spoken as the player", function()
    local c = connected_client()
    local emotes, done = {}, nil
    c:say("blacksmith", "lua-p1", "[[reply:*nods slowly* Aye, lad. (sighs) Two coins.\nPlayer: Deal!]]", {
      on_emote = function(m) emotes[#emotes + 1] = m.emote end,
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    })
    assert.is_true(L.pump({ c }, function() return done ~= nil end, 10))
    assert.are.equal("Aye, lad. Two coins.", done.text)
    assert.are.equal("nods slowly", emotes[1])
    assert.are.equal("sighs", emotes[2])
    assert.are.equal(2, #done.emotes)
  end)

  it("generates barks for several NPCs, each with its own result", function()
    local c = connected_client()
    local answer, err = ask(c, "barks.generate", {
      npcs = { { npc = "blacksmith" }, { npc = "nobody" }, { npc = "mage", context = { weather = "rain" } } },
      context = { location = "market" },
    })
    assert.is_nil(err)
    assert.are.equal("barks", answer.type)
    assert.are.equal(3, #answer.results)
    assert.are.equal("blacksmith", answer.results[1].npc)
    assert.is_true(#answer.results[1].text > 0)
    assert.are.equal("unknown_npc", answer.results[2].error.code)
    assert.are.equal("mage", answer.results[3].npc)
  end)

  it("runs a group scene: the addressed NPC answers first, the chain stops at the bound", function()
    local others = {}
    local c = connected_client({ on_message = function(m) others[#others + 1] = m end })
    local ok = ask(c, "scene.start", { scene = "lua-tavern", player = "lua-p1", player_name = "Rowan",
      npcs = { "blacksmith", "mage" } })
    assert.are.equal("ok", ok.type)
    local done = ask(c, "scene.say", { scene = "lua-tavern", text = "Aelindra, what does Brom know?", max_replies = 2 })
    assert.are.equal("scene.done", done.type)
    assert.are.equal("bound", done.stopped)
    assert.are.equal(2, #done.replies)
    assert.are.equal("mage", done.replies[1].npc)
    assert.are.equal("blacksmith", done.replies[2].npc)
    -- every NPC reply streamed under its own id, "<scene.say id>/<n>", naming its speaker
    local starts, ends = {}, {}
    for _, m in ipairs(others) do
      if m.type == "reply.start" then starts[#starts + 1] = m end
      if m.type == "reply.end" then ends[#ends + 1] = m end
    end
    assert.are.equal(2, #starts)
    assert.are.equal(done.replies[1].id, starts[1].id)
    assert.are.equal("mage", starts[1].npc)
    assert.are.equal("lua-tavern", starts[1].scene)
    assert.are.equal(tostring(done.id) .. "/2", ends[2].id)
    assert.are.equal("blacksmith", ends[2].npc)
    local removed = ask(c, "scene.remove", { scene = "lua-tavern", npc = "mage" })
    assert.are.equal("ok", removed.type)
    local ended = ask(c, "scene.end", { scene = "lua-tavern" })
    assert.are.equal("ok", ended.type)
    local _, err = ask(c, "scene.say", { scene = "lua-tavern", text = "hello?" })
    assert.are.equal("bad_request", err.code)
  end)

  it("refuses a blocked player line with error filtered (moderation plugin)", function()
    local c = connected_client()
    local err
    c:say("blacksmith", "lua-p1", "you grobblewort!", {
      on_done = function() error("a blocked line must not be answered") end,
      on_error = function(e) err = e end,
    })
    assert.is_true(L.pump({ c }, function() return err ~= nil end, 10))
    assert.are.equal("filtered", err.code)
  end)
end)

-- The client against a real npcbridge server with the fake upstream behind it.
-- tests/test_lua.py starts `python -m npcbridge.testing.stack` and passes its URLs in
-- NPCBRIDGE_WS_URL / NPCBRIDGE_CONTROL_URL. The player text carries the fake upstream's directives.
local npcbridge = require("npcbridge")
local L = require("spec.live")

if not L.ws_url then
  describe("npcbridge server integration", function()
    pending("NPCBRIDGE_WS_URL is not set (run through tests/test_lua.py)")
  end)
  return
end

local function new_client(opts)
  opts = opts or {}
  opts.url = opts.url or L.ws_url
  opts.reconnect_initial = opts.reconnect_initial or 0.1
  return npcbridge.new(opts)
end

local function connected_client(opts)
  local c = new_client(opts)
  finally(function() c:close() end) -- a client left open would slow the server's restart
  assert(c:connect())
  assert(L.pump({ c }, function() return c:is_ready() end, 10), "no welcome from " .. L.ws_url)
  return c
end

describe("npcbridge server integration", function()
  it("connects with hello/welcome", function()
    local welcome
    local c = new_client({ on_connect = function(w) welcome = w end })
    assert(c:connect())
    assert.is_true(L.pump({ c }, function() return welcome ~= nil end, 10))
    assert.are.equal("welcome", welcome.type)
    assert.are.equal(1, welcome.protocol)
    assert.are.equal("string", type(welcome.session))
    assert.are.equal("table", type(welcome.limits))
    assert.are.equal("ready", c.state)
    c:close()
  end)

  it("streams a reply", function()
    local c = connected_client()
    local events, deltas, done = {}, {}, nil
    local id = c:say("blacksmith", "p1", "Fix my sword? [[reply:Aye lad, leave it on the anvil by the door.]]", {
      on_start = function(m) events[#events + 1] = "start:" .. m.npc end,
      on_delta = function(text, m)
        deltas[#deltas + 1] = text
        events[#events + 1] = "delta:" .. m.seq
      end,
      on_done = function(r) done = r end,
      on_error = function(e) error("unexpected error " .. tostring(e)) end,
    })
    assert.is_not_nil(id)
    assert.is_true(L.pump({ c }, function() return done ~= nil end, 10))
    assert.are.equal("start:blacksmith", events[1])
    assert.is_true(#deltas >= 2)
    for i = 2, #events do assert.are.equal("delta:" .. (i - 2), events[i]) end
    assert.are.equal("Aye lad, leave it on the anvil by the door.", done.text)
    assert.are.equal(table.concat(deltas), done.text)
    assert.are.equal("stop", done.finish)
    assert.are.equal(id, done.id)
    assert.are.equal("table", type(done.usage))
    c:close()
  end)

  it("keeps two overlapping requests apart", function()
    local c = connected_client()
    local got = { a = {}, b = {} }
    local done = {}
    local order = {}
    local function opts(key)
      return {
        on_delta = function(t)
          got[key][#got[key] + 1] = t
          order[#order + 1] = key
        end,
        on_done = function(r) done[key] = r end,
        on_error = function(e) error(tostring(e)) end,
      }
    end
    c:say("blacksmith", "p1", "[[reply:one two three four five six seven eight]] [[tps:40]]", opts("a"))
    c:say("mage", "p1", "[[reply:alpha beta gamma delta epsilon zeta eta theta]] [[tps:40]]", opts("b"))
    assert.is_true(L.pump({ c }, function() return done.a and done.b end, 15))
    assert.are.equal("one two three four five six seven eight", done.a.text)
    assert.are.equal("alpha beta gamma delta epsilon zeta eta theta", done.b.text)
    assert.are.equal(done.a.text, table.concat(got.a))
    assert.are.equal(done.b.text, table.concat(got.b))
    assert.are.equal("blacksmith", done.a.npc)
    assert.are.equal("mage", done.b.npc)
    -- both were streaming at the same time: their deltas interleave
    local switches = 0
    for i = 2, #order do if order[i] ~= order[i - 1] then switches = switches + 1 end end
    assert.is_true(switches >= 2, "deltas did not interleave: " .. table.concat(order, ","))
    c:close()
  end)

  it("cancels a reply", function()
    local c = connected_client()
    local id, deltas, done, err = nil, {}, nil, nil
    id = c:say("mage", "p1", "Tell me everything. [[slow]]", {
      on_delta = function(t)
        deltas[#deltas + 1] = t
        if #deltas == 2 then assert(c:cancel(id)) end
      end,
      on_done = function(r) done = r end,
      on_error = function(e) err = e end,
    })
    assert.is_true(L.pump({ c }, function() return done or err end, 15))
    assert.is_nil(err)
    assert.are.equal("cancelled", done.finish)
    assert.are.equal(id, done.id)
    assert.is_true(#deltas >= 2 and #deltas < 50)
    local streamed = table.concat(deltas)
    if done.rewritten then
      -- post-processing may tidy the final text (e.g. trailing space); it says so
      assert.are.equal(1, streamed:find(done.text, 1, true))
    else
      assert.are.equal(streamed, done.text)
    end
    c:close()
  end)

  it("reports a server-side error as a value", function()
    local c = connected_client()
    local err, done
    local id = c:say("nobody-here", "p1", "hello?", {
      on_done = function(r) done = r end,
      on_error = function(e) err = e end,
    })
    assert.is_true(L.pump({ c }, function() return err or done end, 10))
    assert.is_nil(done)
    assert.are.equal("unknown_npc", err.code)
    assert.are.equal(id, err.id)
    assert.is_false(err.retryable)
    assert.are.equal("string", type(err.message))
    assert.truthy(tostring(err):find("unknown_npc", 1, true))
    -- the connection is still usable
    local pong
    c:ping({ on_reply = function(m) pong = m end })
    assert.is_true(L.pump({ c }, function() return pong end, 10))
    c:close()
  end)

  it("reports an upstream failure before any text", function()
    local c = connected_client()
    local err, done
    c:say("mage", "p1", "[[status:503]]", {
      on_done = function(r) done = r end,
      on_error = function(e) err = e end,
    })
    assert.is_true(L.pump({ c }, function() return err or done end, 10))
    assert.is_nil(done)
    assert.are.equal("upstream_error", err.code)
    assert.is_true(err.retryable)
    assert.is_nil(err.partial)
  end)

  it("reports a stream cut midway with the partial text", function()
    local c = connected_client()
    local err, done, deltas = nil, nil, {}
    c:say("blacksmith", "p1", "[[reply:one two three four five six]] [[cut:3]]", {
      on_delta = function(t) deltas[#deltas + 1] = t end,
      on_done = function(r) done = r end,
      on_error = function(e) err = e end,
    })
    assert.is_true(L.pump({ c }, function() return err or done end, 10))
    assert.is_nil(done) -- reply.end finish "error" is followed by `error`: on_error only
    assert.are.equal("string", type(err.code))
    assert.are.equal("string", type(err.partial))
    assert.are.equal(1, table.concat(deltas):find(err.partial, 1, true))
    assert.truthy(err.partial:find("^one two"))
  end)

  it("defines an NPC and receives its actions", function()
    local c = connected_client()
    local ok, action, done
    c:define_npc("gatekeeper", {
      name = "Gus",
      description = "The village gatekeeper.",
      actions = { { name = "open_gate", description = "Open the gate.",
        parameters = { type = "object", properties = { speed = { type = "integer" } } } } },
    }, { on_reply = function(m) ok = m end, on_error = function(e) error(tostring(e)) end })
    c:say("gatekeeper", "p1", 'Open up! [[tool:open_gate:{"speed": 2}]]', {
      on_action = function(a) action = a end,
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    })
    assert.is_true(L.pump({ c }, function() return done end, 10))
    assert.are.equal("ok", ok.type)
    assert.are.equal("open_gate", action.name)
    assert.are.equal(2, action.args.speed)
    assert.are.equal("gatekeeper", action.npc)
    c:close()
  end)

  it("sends any message type through request()", function()
    local c = connected_client()
    local pong, err
    local id = c:request("ping", {}, { on_reply = function(m) pong = m end })
    c:request("x.no-such-plugin", { payload = "hi" }, { on_error = function(e) err = e end })
    assert.is_true(L.pump({ c }, function() return pong and err end, 10))
    assert.are.equal("pong", pong.type)
    assert.are.equal(id, pong.id)
    assert.are.equal("unknown_type", err.code)
    -- quest.generate answers `quest` (the fake upstream is told what to answer)
    local quest, qerr
    local theme = 'a haunted mine [[json:{"title": "The Deep Forge", "description": "Something '
      .. 'hammers in the closed mine at night.", "objectives": ["Enter the mine", "Find the forge"], '
      .. '"rewards": ["25 gold"]}]]'
    c:request("quest.generate", { theme = theme, difficulty = "easy", npc = "blacksmith" },
      { on_reply = function(m) quest = m end, on_error = function(e) qerr = e end })
    assert.is_true(L.pump({ c }, function() return quest or qerr end, 10))
    assert.is_nil(qerr)
    assert.are.equal("quest", quest.type)
    assert.are.equal("The Deep Forge", quest.quest.title)
    assert.are.same({ "Enter the mine", "Find the forge" }, quest.quest.objectives)
    -- barks.generate answers `barks` with one result per NPC
    local barks
    c:request("barks.generate", { npcs = { { npc = "blacksmith" }, { npc = "mage" } } },
      { on_reply = function(m) barks = m end, on_error = function(e) barks = e end })
    assert.is_true(L.pump({ c }, function() return barks end, 10))
    assert.are.equal("barks", barks.type)
    assert.are.equal(2, #barks.results)
    c:close()
  end)

  it("calls memory.add / memory.query / memory.forget", function()
    local c = connected_client()
    local answers = {}
    local function cb(name)
      return {
        on_reply = function(m) answers[name] = m end,
        on_error = function(e) answers[name] = e end,
      }
    end
    local o = cb("add")
    o.importance = 8
    c.memory:add("blacksmith", "p-mem", "the player stole the sword", o)
    local q = cb("query")
    q.text = "sword"
    c.memory:query("blacksmith", "p-mem", q)
    c.memory:forget("p-mem", "blacksmith", cb("forget"))
    assert.is_true(L.pump({ c }, function() return answers.add and answers.query and answers.forget end, 10))
    if answers.add.type == "ok" then
      assert.are.equal("memory", answers.query.type)
      assert.are.equal("table", type(answers.query.items))
      assert.are.equal("ok", answers.forget.type)
    else
      -- a server without the memory feature answers unknown_type: still an error value
      assert.are.equal("unknown_type", answers.add.code)
    end
    c:close()
  end)

  it("reconnects after a server restart", function()
    local sessions, disconnects = {}, {}
    local c = new_client({
      on_connect = function(w) sessions[#sessions + 1] = w.session end,
      on_disconnect = function(e) disconnects[#disconnects + 1] = e end,
    })
    assert(c:connect())
    c:define_npc("innkeeper", { name = "Maud", description = "Runs the inn." })
    finally(function() c:close() end)
    assert.is_true(L.pump({ c }, function() return #sessions == 1 end, 10))

    -- a reply in flight when the server goes away fails with a retryable "disconnected"
    local err, deltas = nil, 0
    c:say("mage", "p1", "[[slow]]", {
      on_delta = function() deltas = deltas + 1 end,
      on_error = function(e) err = e end,
    })
    assert.is_true(L.pump({ c }, function() return deltas >= 1 end, 10))
    local post = L.post_async(L.control_url .. "/restart?down_ms=400")
    assert.is_true(L.pump({ c, post }, function() return err ~= nil end, 15))
    assert.are.equal("disconnected", err.code)
    assert.is_true(err.retryable)
    assert.are.equal(1, #disconnects)

    -- a request made while the server is down waits for the new connection
    local done
    c:say("innkeeper", "p1", "[[reply:Room's two silver.]]", {
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    })
    assert.is_true(L.pump({ c, post }, function() return done ~= nil and post.done end, 20))
    assert.are.equal(200, post.status)
    assert.are.equal(2, #sessions)
    assert.are_not.equal(sessions[1], sessions[2])
    -- the NPC defined before the restart was defined again on the new connection
    assert.are.equal("Room's two silver.", done.text)
    c:close()
  end)
end)

describe("npcbridge server with a token", function()
  local url, token = os.getenv("NPCBRIDGE_AUTH_WS_URL"), os.getenv("NPCBRIDGE_AUTH_TOKEN")
  if not url then
    pending("NPCBRIDGE_AUTH_WS_URL is not set (run through tests/test_lua.py)")
    return
  end

  it("connects with the right token", function()
    local c = new_client({ url = url, token = token })
    finally(function() c:close() end)
    assert(c:connect())
    assert.is_true(L.pump({ c }, function() return c:is_ready() end, 10))
  end)

  it("stops with unauthorized, without reconnecting, on a wrong token", function()
    local errors, said = {}, nil
    local c = new_client({ url = url, token = "not-the-token", on_error = function(e) errors[#errors + 1] = e end })
    finally(function() c:close() end)
    assert(c:connect())
    c:say("mage", "p1", "hello", { on_error = function(e) said = e end, on_done = function(r) said = r end })
    assert.is_true(L.pump({ c }, function() return said ~= nil end, 10))
    assert.are.equal("unauthorized", said.code)
    assert.is_false(said.retryable)
    assert.are.equal("unauthorized", errors[1].code)
    assert.are.equal("closed", c.state)
    -- no reconnect attempt follows
    L.pump({ c }, function() return false end, 0.5)
    assert.are.equal("closed", c.state)
    assert.is_nil(c.ws)
  end)
end)

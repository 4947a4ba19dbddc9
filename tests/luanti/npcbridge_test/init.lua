-- Drives the npcbridge mod's public API against a real npcbridge server (with the fake upstream
-- behind it, whose [[...]] directives in the player text script the replies), writes the outcome
-- to <world>/npcbridge_test.json and shuts the server down. The scenario comes from the setting
-- npcbridge_test.scenario: "full", "restart", "encode", "lines", or one line to say: "no_http",
-- "unreachable", "token".
local settings = minetest.settings
-- only the "restart" scenario lists this mod in secure.http_mods: it restarts the npcbridge
-- server through the test stack's control endpoint
local http = minetest.request_http_api()
local scenario = settings:get("npcbridge_test.scenario") or "full"
local deadline_s = tonumber(settings:get("npcbridge_test.deadline_s")) or 40
local results = { scenario = scenario, steps = {}, log = {} }
local finished = false
local started_at = minetest.get_us_time()

local function note(text)
  results.log[#results.log + 1] = string.format("%.3f %s",
    (minetest.get_us_time() - started_at) / 1e6, text)
end

local function finish(reason)
  if finished then
    return
  end
  finished = true
  results.finished = reason
  results.status = npcbridge.status()
  local f = assert(io.open(minetest.get_worldpath() .. "/npcbridge_test.json", "w"))
  f:write(minetest.write_json(results, true))
  f:close()
  minetest.request_shutdown("npcbridge_test done", false, 0)
end

-- a step runs `fn(done)`; `done(result)` records it and starts the next step
local function run_steps(steps)
  local i = 0
  local function next_step()
    i = i + 1
    local step = steps[i]
    if not step then
      return finish("done")
    end
    note("step " .. step.name)
    local recorded = false
    step.fn(function(result)
      if recorded then
        return
      end
      recorded = true
      results.steps[step.name] = result
      next_step()
    end)
  end
  next_step()
end

-- records a reply: deltas, emotes, actions, the end message or the error
local function recorder(done, extra)
  local r = { deltas = {}, emotes = {}, actions = {}, audio = {} }
  local callbacks = {
    on_delta = function(text, so_far)
      r.deltas[#r.deltas + 1] = text
      r.so_far = so_far
    end,
    on_emote = function(emote)
      r.emotes[#r.emotes + 1] = emote
    end,
    on_action = function(name, args)
      r.actions[#r.actions + 1] = { name = name, args = args }
    end,
    on_audio = function(msg)
      r.audio[#r.audio + 1] = { seq = msg.seq, base64_chars = #msg.audio, format = msg.format,
        at_delta = #r.deltas }
    end,
    on_done = function(text, msg)
      r.text, r.finish, r.npc = text, msg.finish, msg.npc
      r.end_actions = msg.actions and #msg.actions or 0
      done(r)
    end,
    on_error = function(err)
      r.error = { code = err.code, message = err.message, retryable = err.retryable,
        partial = err.partial }
      done(r)
    end,
  }
  for k, v in pairs(extra or {}) do
    local base = callbacks[k]
    callbacks[k] = function(...)
      v(...)
      base(...)
    end
  end
  return r, callbacks
end

local function answer(done)
  return {
    on_done = function(value)
      done({ value = value })
    end,
    on_error = function(err)
      done({ error = { code = err.code, message = err.message } })
    end,
  }
end

local GUARD = {
  name = "Aldric",
  description = "The gate guard of the village.",
  personality = "dutiful, suspicious",
  speech_style = "clipped military speech",
  actions = { {
    name = "open_gate",
    description = "Open a gate of the village.",
    parameters = { type = "object", properties = { gate = { type = "string" } },
      required = { "gate" } },
  } },
}

local QUEST_JSON = '{"title": "Rats in the Cellar", "description": "Rats ate the cheese.", '
  .. '"objectives": ["Find the cellar key", "Kill the rats"], "rewards": ["30 gold"], "xp": 50}'

-- what the mod sends to the chat of the (absent) player "tester"
local chat_lines = {}
local chat_command_wait
local send_to_player = minetest.chat_send_player
minetest.chat_send_player = function(name, text)
  if name == "tester" then
    chat_lines[#chat_lines + 1] = text
  end
  return send_to_player(name, text)
end

-- run the /npc chat command as "tester"; done once a line starting with `want` reached chat
-- done({lines}) once a chat line to "tester" starts with `want` (or after 10 s, with timeout)
chat_command_wait = function(want, done)
  local waited = 0
  local function check()
    for _, line in ipairs(chat_lines) do
      if line:sub(1, #want) == want then
        return done({ lines = chat_lines })
      end
    end
    waited = waited + 0.1
    if waited > 10 then
      return done({ lines = chat_lines, timeout = true })
    end
    minetest.after(0.1, check)
  end
  check()
end

local function chat_command(param, want, done)
  chat_lines = {}
  local ok, message = minetest.registered_chatcommands["npc"].func("tester", param)
  chat_command_wait(want, function(result)
    result.ok, result.message = ok, message
    done(result)
  end)
end

-- the example NPC: placed in the world, right-clicked by "tester", who types a line in its form
-- (no client is connected, so the player is a stand-in with the two methods the mod calls)
local function talk_to_entity(done)
  local pos = { x = 0, y = 8, z = 0 }
  minetest.emerge_area(pos, pos, function(_, _, remaining)
    if remaining > 0 then
      return
    end
    local object = minetest.add_entity(pos, "npcbridge:npc",
      minetest.serialize({ npc = "guard", display = "Aldric" }))
    if not object or not object:get_luaentity() then
      return done({ error = "add_entity failed" })
    end
    local tester = {
      is_player = function() return true end,
      get_player_name = function() return "tester" end,
    }
    local entity = object:get_luaentity()
    -- read now: with no player near, the engine may deactivate the object at any step
    local nametag, staticdata = object:get_properties().nametag, entity:get_staticdata()
    entity.on_rightclick(entity, tester)
    chat_lines = {}
    for _, handler in ipairs(minetest.registered_on_player_receive_fields) do
      if handler(tester, "npcbridge:talk", { text = "  [[reply:The gate opens at dawn.]] ",
        send = "Say" }) then
        break
      end
    end
    chat_command_wait("<Aldric>", function(result)
      result.nametag, result.staticdata = nametag, staticdata
      done(result)
    end)
  end)
end

local full = {
  { name = "define", fn = function(done)
    npcbridge.define_npc("guard", GUARD, answer(done))
  end },
  { name = "stream", fn = function(done)
    local _, cb = recorder(done)
    results.stream_id = npcbridge.say("blacksmith", "tester", "[[words:40]] [[tps:40]]", cb,
      { context = { location = "forge", hour = 21 } })
  end },
  { name = "two_at_once", fn = function(done)
    local both, left = {}, 2
    local in_flight, max_in_flight = 0, 0
    local function one(key, npc, text)
      in_flight = in_flight + 1
      max_in_flight = math.max(max_in_flight, in_flight)
      local _, cb = recorder(function(r)
        both[key] = r
        in_flight = in_flight - 1
        left = left - 1
        if left == 0 then
          both.max_in_flight = max_in_flight
          done(both)
        end
      end, { on_delta = function()
        -- both replies stream side by side: count deltas seen while the other is unfinished
        if in_flight == 2 then
          both.interleaved = (both.interleaved or 0) + 1
        end
      end })
      npcbridge.say(npc, "tester", text, cb)
    end
    one("blacksmith", "blacksmith",
      "[[reply:Aye lad, the forge is hot and the steel is ready.]] [[tps:10]]")
    one("guard", "guard", "[[reply:Halt! State your business at the gate, traveller.]] [[tps:10]]")
  end },
  { name = "cancel", fn = function(done)
    local id
    local r, cb = recorder(done, { on_delta = function()
      if not results.cancel_sent then
        results.cancel_sent = npcbridge.cancel(id)
      end
    end })
    id = npcbridge.say("blacksmith", "tester", "[[slow]]", cb)
    r.id = id
  end },
  { name = "unknown_npc", fn = function(done)
    local _, cb = recorder(done)
    npcbridge.say("nobody_here", "tester", "hello?", cb)
  end },
  { name = "not_json", fn = function(done)
    -- a function cannot be JSON: the request ends with bad_request, after say() returned
    local returned = false
    local _, cb = recorder(function(r)
      r.after_return = returned
      done(r)
    end)
    npcbridge.say("blacksmith", "tester", "hello", cb, { context = { callback = print } })
    returned = true
  end },
  { name = "action", fn = function(done)
    local _, cb = recorder(done)
    npcbridge.say("guard", "tester",
      '[[reply:Opening the north gate.]] [[tool:open_gate:{"gate": "north"}]]', cb)
  end },
  { name = "quest", fn = function(done)
    npcbridge.quest("blacksmith", { theme = "rats [[json:" .. QUEST_JSON .. "]]",
      difficulty = "easy", fields = { xp = { type = "integer", minimum = 0 } } }, answer(done))
  end },
  { name = "chat_command", fn = function(done)
    chat_command("guard [[reply:Move along. *taps his spear*]]", "<Aldric>", done)
  end },
  { name = "chat_command_unknown", fn = function(done)
    chat_command("nobody_here hello", "[npcbridge]", done)
  end },
  { name = "entity", fn = talk_to_entity },
  { name = "voiced", fn = function(done)
    -- a voiced NPC with empty lists, sent as [] (the server refuses {} for them)
    npcbridge.define_npc("bard", { name = "Lyra", description = "A wandering bard.",
      voice = { name = "troy" }, actions = npcbridge.array(), knowledge = npcbridge.array() }, {
      on_error = function(err)
        done({ error = { code = err.code, message = err.message } })
      end,
      on_done = function()
        local _, cb = recorder(done)
        npcbridge.say("bard", "tester", "[[reply:Aye, lad. The road is long.]]", cb,
          { voice = true })
      end,
    })
  end },
  { name = "memory_add", fn = function(done)
    npcbridge.memory.add("blacksmith", "tester", "the player returned the lost hammer",
      { importance = 8 }, answer(done))
  end },
  { name = "memory_query", fn = function(done)
    npcbridge.memory.query("blacksmith", "tester", "hammer", { limit = 5 }, answer(done))
  end },
  { name = "memory_forget", fn = function(done)
    npcbridge.memory.forget("tester", "blacksmith", answer(done))
  end },
  { name = "memory_after_forget", fn = function(done)
    npcbridge.memory.query("blacksmith", "tester", "hammer", { limit = 5 }, answer(done))
  end },
}

-- the server restarts between two lines to an NPC this mod defined: the second still works
-- (the mod opens a new session and defines the NPC again)
local restart = {
  full[1],
  { name = "before", fn = function(done)
    local _, cb = recorder(done)
    npcbridge.say("guard", "tester", "[[reply:Halt.]]", cb)
  end },
  { name = "restart", fn = function(done)
    http.fetch({ url = settings:get("npcbridge_test.control_url") .. "/restart?down_ms=300",
      method = "POST", data = "", timeout = 10 }, function(res)
      done({ code = res.code })
    end)
  end },
  { name = "after", fn = function(done)
    local tries = 0
    local function try()
      tries = tries + 1
      local _, cb = recorder(function(r)
        -- a line sent while the server was still down ends with `unreachable`: say it again
        if r.error and r.error.code == "unreachable" and tries < 20 then
          return minetest.after(0.5, try)
        end
        r.tries = tries
        done(r)
      end)
      npcbridge.say("guard", "tester", "[[reply:Halt again.]]", cb)
    end
    try()
  end },
}

-- one line to a configured NPC ("no_http", "unreachable", "token": answered or refused)
local one_line = {
  { name = "say", fn = function(done)
    local _, cb = recorder(done)
    npcbridge.say("blacksmith", "tester", "[[reply:Aye.]]", cb)
  end },
}

-- several lines in a row to a configured NPC, each answered before the next ("lines": the
-- requests of one session, spread over the workers of a server that runs several)
local lines = {}
for n = 1, 8 do
  lines[n] = { name = "line" .. n, fn = function(done)
    local _, cb = recorder(done)
    npcbridge.say("blacksmith", "tester", "[[reply:Line " .. n .. ".]]", cb)
  end }
end

-- every JSON text in <world>/npcbridge_vectors.json (an array of {name, json}) read by the
-- mod's decoder (the one its answers go through) and written again by its encoder
local function encode_vectors()
  local f = assert(io.open(minetest.get_worldpath() .. "/npcbridge_vectors.json", "r"))
  local cases = minetest.parse_json(f:read("*a"))
  f:close()
  local out = {}
  for _, case in ipairs(cases) do
    local value, err = npcbridge.decode_json(case.json)
    local text
    if value then
      text, err = npcbridge.encode_json(value)
    end
    out[#out + 1] = { name = case.name, json = text or "", error = err or "" }
  end
  results.encoded = out
  -- what the engine's own writer makes of an empty table and a whole number (why the mod
  -- keeps its writer: bindings/luanti/README.md)
  results.write_json = minetest.write_json({ context = {}, id = 7 })
  finish("done")
end

local general_errors = {}
npcbridge.register_on_error(function(err)
  general_errors[#general_errors + 1] = err.code
end)
results.general_errors = general_errors

minetest.after(deadline_s, function()
  finish("deadline")
end)
minetest.after(0, function()
  if scenario == "encode" then
    return encode_vectors()
  end
  local scenarios = { full = full, restart = restart, lines = lines }
  run_steps(scenarios[scenario] or one_line)
end)

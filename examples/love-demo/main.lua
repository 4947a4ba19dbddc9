-- npcbridge LÖVE demo: two NPCs, the player types, the reply appears as it streams. Each NPC
-- keeps its feelings (docs/state.md): the trust bar under its tab moves with every exchange and
-- with a gift (F2: a world event the NPC reacts to).
--
--   love examples/love-demo                 (server at NPCBRIDGE_URL, default ws://127.0.0.1:8765/)
--   NPCBRIDGE_DEMO_SCRIPTED=1 love examples/love-demo   (headless: one line each, exit 0 on success)
--
-- Keys: type to write, Enter to say it, Tab to face the other NPC, F2 to give a gift, Escape to
-- cancel a reply / quit, hold Ctrl to talk into the microphone. When the server offers voice, the
-- NPCs speak aloud.

-- Find the client library: a copy of bindings/lua/npcbridge/ next to main.lua (how a game ships
-- it), or the one in this repository.
if not pcall(require, "npcbridge") then
  local src = love.filesystem.getSource()
  package.path = src .. "/../../bindings/lua/?.lua;" .. src .. "/../../bindings/lua/?/init.lua;" .. package.path
end
local npcbridge = require("npcbridge")
local love_voice = require("npcbridge.love_voice")

local URL = os.getenv("NPCBRIDGE_URL") or os.getenv("NPCBRIDGE_WS_URL") or "ws://127.0.0.1:8765/"
local TOKEN = os.getenv("NPCBRIDGE_TOKEN")
local PLAYER = "player1"

-- The two NPCs of the demo.
local NPCS = {
  {
    id = "blacksmith",
    persona = {
      name = "Brom",
      description = "The village blacksmith, rough but kind.",
      personality = "gruff, honest, secretly soft-hearted, protective of the village",
      speech_style = "short sentences, calls everyone 'lad'",
      knowledge = { "The mine closed last winter.", "Steel costs 12 gold." },
      state = { trust = 10, volatility = 1.0 },
      voice = { name = "troy" },
    },
    color = { 0.95, 0.65, 0.35 },
  },
  {
    id = "mage",
    persona = {
      name = "Aelindra",
      description = "A haughty elf mage who considers humans children.",
      personality = "proud, precise, impatient",
      speech_style = "formal and condescending",
      state = { trust = -10, volatility = 0.6 },
      voice = { name = "autumn" },
    },
    color = { 0.6, 0.75, 1.0 },
  },
}

local client
local current = 1 -- which NPC the player faces
local input = ""
local log = {} -- {who, text, color}
local active = {} -- request id -> log entry being streamed
local status = "connecting"
local mic -- push-to-talk recorder (when the audio module is on)
local has_voice, hears = false, false -- what the server offers (welcome.features)

-- Each NPC speaks through a speaker of its own when LÖVE's audio module is on.
local function voiced() return love.audio ~= nil and love.sound ~= nil end

local function add_line(who, text, color)
  log[#log + 1] = { who = who, text = text, color = color or { 1, 1, 1 } }
  while #log > 200 do table.remove(log, 1) end
  return log[#log]
end

-- The trust an NPC has in the player, as last seen (client.states follows every state frame).
local function trust_of(npc)
  local known = client.states:of(npc.id, PLAYER)
  return known and known.relationship and known.relationship.trust or npc.persona.state.trust
end

-- A world event: the player gives the NPC a gift. It remembers it, its trust grows, and it reacts
-- with a short line, streamed into the log.
local function give_gift(npc_index, on_finished)
  local npc = NPCS[npc_index]
  add_line("You", "(give " .. npc.persona.name .. " a gift)", { 0.8, 0.8, 0.8 })
  local entry
  return client:world_event({
    text = "The player gave " .. npc.persona.name .. " a fine gift.",
    npc = npc.id,
    player = PLAYER,
    react = true,
  }, {
    on_reaction = function(m)
      if m.type == "reply.start" then entry = add_line(npc.persona.name, "", npc.color) end
      if m.type == "reply.delta" and entry then entry.text = entry.text .. m.text end
    end,
    on_reply = function(ok) if on_finished then on_finished(true, ok) end end,
    on_error = function(err)
      add_line("!", tostring(err), { 1, 0.3, 0.3 })
      if on_finished then on_finished(false, err) end
    end,
  })
end

local function say(npc_index, text, on_finished)
  local npc = NPCS[npc_index]
  add_line("You", text, { 0.8, 0.8, 0.8 })
  local entry = add_line(npc.persona.name, "", npc.color)
  local id
  id = client:say(npc.id, PLAYER, text, {
    voice = npc.speaker and has_voice or nil,
    on_audio = function(frame) if npc.speaker then npc.speaker:push(frame) end end,
    context = { location = npc.id == "blacksmith" and "forge" or "tower", hour = 21 },
    on_delta = function(delta) entry.text = entry.text .. delta end,
    on_emote = function(e) add_line("", "*" .. tostring(e.emote) .. "*", npc.color) end,
    on_action = function(a) add_line("", "[" .. npc.persona.name .. " does " .. tostring(a.name) .. "]", npc.color) end,
    on_done = function(reply)
      active[id] = nil
      entry.text = reply.text
      if on_finished then on_finished(true, reply) end
    end,
    on_error = function(err)
      active[id] = nil
      entry.text = (err.partial or entry.text) .. "  <" .. err.code .. ": " .. err.message .. ">"
      if on_finished then on_finished(false, err) end
    end,
  })
  if id then active[id] = entry end
  return id
end

-- Scripted mode: each NPC answers one line; exit 0 when both replies streamed in full.
local scripted = {
  timeout = tonumber(os.getenv("NPCBRIDGE_DEMO_TIMEOUT") or "30"),
  started = nil,
  pending = 0,
  failed = false,
}

local function finish(code, message)
  print(message)
  io.stdout:flush()
  love.event.quit(code)
end

-- After the lines: a gift to Brom must raise his trust (the state frame of the event).
local function gift_script()
  local brom = NPCS[1]
  local before = trust_of(brom)
  scripted.pending = scripted.pending + 1
  give_gift(1, function(ok, answer)
    local reactions = ok and answer.reactions and #answer.reactions or 0
    local after = trust_of(brom)
    print(string.format("gift to %s: %d reaction(s), trust %s -> %s", brom.persona.name, reactions, tostring(before), tostring(after)))
    if not ok or reactions ~= 1 or not (after > before) then scripted.failed = true end
    scripted.pending = scripted.pending - 1
  end)
end

local function run_script()
  local lines = {
    { 1, os.getenv("NPCBRIDGE_DEMO_LINE") or "Can you fix my sword before nightfall?" },
    { 2, "Teach me a spell, please." },
  }
  scripted.pending = #lines
  for _, l in ipairs(lines) do
    local npc = NPCS[l[1]]
    local deltas = {}
    npc.frames = 0
    local id, err = client:say(npc.id, PLAYER, l[2], {
      voice = npc.speaker and has_voice or nil,
      on_audio = function(frame)
        npc.frames = npc.frames + 1
        npc.speaker:push(frame)
      end,
      on_delta = function(d) deltas[#deltas + 1] = d end,
      on_done = function(reply)
        local streamed = table.concat(deltas)
        local whole = reply.text ~= "" and #deltas > 0
          and (streamed == reply.text or (reply.rewritten and streamed:find(reply.text, 1, true) == 1))
        if not whole then scripted.failed = true end
        print(string.format("%s (%d deltas, finish=%s): %s", npc.persona.name, #deltas, tostring(reply.finish), reply.text))
        scripted.pending = scripted.pending - 1
        if scripted.pending == 0 then gift_script() end
      end,
      on_error = function(e)
        print(npc.persona.name .. " failed: " .. tostring(e))
        scripted.failed = true
        scripted.pending = scripted.pending - 1
      end,
    })
    if not id then finish(1, "say failed: " .. tostring(err)) end
  end
end

function love.load()
  client = npcbridge.new({
    url = URL,
    token = TOKEN,
    on_connect = function(welcome)
      status = "connected to " .. tostring(welcome.server) .. " (session " .. tostring(welcome.session) .. ")"
      has_voice, hears = false, false
      for _, f in ipairs(welcome.features or {}) do
        has_voice = has_voice or f == "voice"
        hears = hears or f == "speech_in"
      end
      if DEMO_SCRIPTED and not scripted.started then
        scripted.started = true
        run_script()
      end
    end,
    on_disconnect = function(err) status = "reconnecting: " .. err.message end,
    on_error = function(err)
      add_line("!", tostring(err), { 1, 0.3, 0.3 })
      -- a URL that can never work or a name that does not resolve: the client does not retry
      if err.code == "bad_url" or err.code == "resolve_failed" then status = "cannot connect: " .. err.message end
      if DEMO_SCRIPTED and not err.retryable then finish(1, "error: " .. tostring(err)) end
    end,
  })
  for _, npc in ipairs(NPCS) do
    client:define_npc(npc.id, npc.persona)
    if voiced() then npc.speaker = love_voice.new_speaker() end
  end
  if voiced() then mic = love_voice.new_recorder() end
  client:connect()
  scripted.deadline = love.timer.getTime() + scripted.timeout
  if love.keyboard and love.keyboard.setKeyRepeat then love.keyboard.setKeyRepeat(true) end
end

-- NPCBRIDGE_DEMO_AUTOPLAY=<seconds>: with a window, type a line to each NPC, then quit (a smoke test
-- of the interactive mode and its drawing).
local autoplay = tonumber(os.getenv("NPCBRIDGE_DEMO_AUTOPLAY") or "")
local autoplay_step = 0

function love.update(dt)
  client:update()
  for _, npc in ipairs(NPCS) do
    if npc.speaker then npc.speaker:update() end
  end
  if mic then mic:update() end
  if autoplay and not DEMO_SCRIPTED then
    local t = love.timer.getTime() - (scripted.deadline - scripted.timeout)
    if autoplay_step == 0 and status:find("^connected") then
      love.textinput("Hello, smith!")
      love.keypressed("return")
      love.keypressed("tab")
      love.textinput("Hello, mage!")
      love.keypressed("backspace")
      love.keypressed("return")
      autoplay_step = 1
    elseif autoplay_step == 1 and t > autoplay - 0.5 and os.getenv("NPCBRIDGE_DEMO_SCREENSHOT") then
      autoplay_step = 2
      love.graphics.captureScreenshot(function(image)
        local f = io.open(os.getenv("NPCBRIDGE_DEMO_SCREENSHOT"), "wb")
        if f then
          f:write(image:encode("png"):getString())
          f:close()
        end
      end)
    elseif t > autoplay then
      print("autoplay done; status: " .. status)
      for _, l in ipairs(log) do print(l.who .. ": " .. l.text) end
      love.event.quit(0)
    end
  end
  if DEMO_SCRIPTED then
    local speaking = false
    for _, npc in ipairs(NPCS) do speaking = speaking or (npc.speaker and npc.speaker:is_speaking()) end
    if scripted.started and scripted.pending == 0 and not speaking then
      for _, npc in ipairs(NPCS) do
        if npc.speaker and (npc.frames or 0) > 0 then
          print(string.format("%s spoke %d frames (%.2f s)", npc.persona.name, npc.frames, npc.speaker:position()))
        end
      end
      if scripted.failed then finish(1, "FAILED") else finish(0, "OK") end
    elseif love.timer.getTime() > scripted.deadline then
      finish(2, "TIMEOUT after " .. scripted.timeout .. " s (status: " .. status .. ")")
    end
  end
end

function love.quit()
  if client then client:close(0.2) end
end

-- Interactive parts (not used headless) ----------------------------------------------------------

function love.textinput(t)
  input = input .. t
end

function love.keypressed(key)
  if key == "return" or key == "kpenter" then
    if input:match("%S") then say(current, input) end
    input = ""
  elseif key == "backspace" then
    -- drop the last UTF-8 character
    input = input:gsub("[%z\1-\127\194-\244][\128-\191]*$", "")
  elseif (key == "lctrl" or key == "rctrl") and mic and hears and not mic:is_recording() then
    -- push-to-talk: the NPC stops talking (barge-in), the microphone goes to it as the line
    local npc = NPCS[current]
    if npc.speaker then npc.speaker:barge_in(client) end
    local entry = add_line(npc.persona.name, "", npc.color)
    local _, err = mic:start(client, npc.id, PLAYER, {
      voice = npc.speaker and has_voice or nil,
      on_transcript = function(heard) add_line("You (spoken)", heard, { 0.8, 0.8, 0.8 }) end,
      on_delta = function(delta) entry.text = entry.text .. delta end,
      on_audio = function(frame) if npc.speaker then npc.speaker:push(frame) end end,
      on_done = function(reply) entry.text = reply.text end,
      on_error = function(e) entry.text = entry.text .. "  <" .. e.code .. ": " .. e.message .. ">" end,
    })
    if err then entry.text = "<" .. err.code .. ": " .. err.message .. ">" end
  elseif key == "tab" then
    current = current % #NPCS + 1
  elseif key == "f2" then
    give_gift(current)
  elseif key == "escape" then
    local any = false
    for id in pairs(active) do
      client:cancel(id)
      any = true
    end
    if not any then love.event.quit(0) end
  end
end

function love.keyreleased(key)
  if (key == "lctrl" or key == "rctrl") and mic and mic:is_recording() then mic:stop() end
end

local function wrap_print(text, x, y, width)
  local font = love.graphics.getFont()
  local _, lines = font:getWrap(text, width)
  love.graphics.printf(text, x, y, width)
  return #lines * font:getHeight()
end

function love.draw()
  local W, H = love.graphics.getDimensions()
  love.graphics.clear(0.08, 0.08, 0.1)
  love.graphics.setColor(0.6, 0.6, 0.6)
  love.graphics.print(status, 10, 8)
  -- NPC tabs
  for i, npc in ipairs(NPCS) do
    local x = 10 + (i - 1) * 220
    love.graphics.setColor(npc.color[1], npc.color[2], npc.color[3], i == current and 1 or 0.35)
    love.graphics.rectangle(i == current and "fill" or "line", x, 30, 210, 28, 4)
    love.graphics.setColor(i == current and { 0, 0, 0 } or npc.color)
    love.graphics.print(npc.persona.name .. " (" .. npc.id .. ")", x + 10, 37)
    -- the trust bar: -100 at the left end, 100 at the right
    local trust = trust_of(npc)
    love.graphics.setColor(0.2, 0.2, 0.25)
    love.graphics.rectangle("fill", x, 62, 210, 6, 3)
    love.graphics.setColor(trust >= 0 and { 0.4, 0.8, 0.45 } or { 0.85, 0.35, 0.3 })
    love.graphics.rectangle("fill", x, 62, 210 * (trust + 100) / 200, 6, 3)
    if npc.speaker and npc.speaker:is_speaking() then -- a mouth that opens with the voice
      love.graphics.setColor(npc.color)
      love.graphics.ellipse("fill", x + 195, 44, 6, 1 + 7 * npc.speaker:mouth())
    end
  end
  -- dialogue log, newest at the bottom
  local y = H - 70
  for i = #log, 1, -1 do
    local l = log[i]
    local text = (l.who ~= "" and (l.who .. ": ") or "") .. l.text
    local font = love.graphics.getFont()
    local _, lines = font:getWrap(text, W - 20)
    y = y - #lines * font:getHeight() - 4
    if y < 76 then break end
    love.graphics.setColor(l.color)
    wrap_print(text, 10, y, W - 20)
  end
  -- input line
  love.graphics.setColor(0.2, 0.2, 0.25)
  love.graphics.rectangle("fill", 10, H - 50, W - 20, 36, 4)
  love.graphics.setColor(1, 1, 1)
  local cursor = (love.timer.getTime() % 1 < 0.5) and "_" or ""
  love.graphics.print("> " .. input .. cursor, 20, H - 40)
  love.graphics.setColor(0.5, 0.5, 0.5)
  love.graphics.print("Enter: say   Ctrl: hold to talk   Tab: other NPC   F2: gift   Esc: stop reply / quit", W - 540, 8)
end

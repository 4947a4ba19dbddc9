-- Voice against a real npcbridge server (tests/test_lua.py starts it, with the fake upstream
-- speaking and transcribing): voiced replies, speech in, barge-in.
local npcbridge = require("npcbridge")
local voice = require("npcbridge.voice")
local L = require("spec.live")

if not L.ws_url then
  describe("voice against the server", function()
    pending("NPCBRIDGE_WS_URL is not set (run through tests/test_lua.py)")
  end)
  return
end

local function connected_client()
  local c = npcbridge.new({ url = L.ws_url, reconnect = false })
  finally(function() c:close() end)
  c:define_npc("lua_smith", { name = "Brom", voice = { name = "troy", speed = 1 } })
  assert(c:connect())
  assert(L.pump({ c }, function() return c:is_ready() end, 10), "no welcome from " .. L.ws_url)
  return c
end

local LINE = "Aye, lad. Leave it on the anvil. I will have it sharp by dawn."

describe("voice against the server", function()
  it("welcome lists voice and speech_in", function()
    local c = connected_client()
    local features = {}
    for _, f in ipairs(c.welcome.features) do features[f] = true end
    assert.is_true(features.voice and features.speech_in)
  end)

  it("a voiced reply comes as audio frames in seq order, before reply.end", function()
    local c = connected_client()
    local events, done = {}, nil
    c:say("lua_smith", "p1", "Fix it? [[reply:" .. LINE .. "]]", {
      voice = true,
      on_delta = function() events[#events + 1] = "delta" end,
      on_audio = function(f) events[#events + 1] = f.seq end,
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    })
    assert.is_true(L.pump({ c }, function() return done ~= nil end, 15))
    local seqs, said = {}, {}
    for _, f in ipairs(done.audio_frames) do
      seqs[#seqs + 1] = f.seq
      if f.text ~= "" then said[#said + 1] = f.text end -- a long unit's later frames have ""
      assert.are.equal("pcm16", f.format)
      assert.are.equal(f.duration_ms, math.floor(voice.duration(f) * 1000 + 0.5))
      assert.are.equal(math.ceil(voice.duration(f) * f.mouth_hz), #voice.bytes(f.mouth))
    end
    assert.is_true(#seqs >= 2, "frames " .. #seqs)
    for i, seq in ipairs(seqs) do assert.are.equal(i - 1, seq) end
    local n = 0
    for _, e in ipairs(events) do if type(e) == "number" then n = n + 1; assert.are.equal(n - 1, e) end end
    assert.are.equal(LINE, done.text)
    assert.are.equal(LINE, table.concat(said, " "))
    assert.is_true(done.voice.audio_ms > 0 and done.voice.chars > 0 and done.voice.ttfa_ms > 0)
  end)

  it("speech in one message and in chunks: the transcript, then the reply", function()
    local c = connected_client()
    local pcm = voice.pcm16((function()
      local s = {}
      for i = 1, 8000 do s[i] = 0.3 * math.sin(i / 4) end
      return s
    end)())
    local heard, done = {}, {}
    local function opts(key)
      return {
        on_transcript = function(t) heard[key] = t end,
        on_done = function(r) done[key] = r end,
        on_error = function(e) error(tostring(e)) end,
      }
    end
    assert(c:speech("lua_smith", "p1", voice.wav(pcm, 16000), opts("whole")))
    local s = assert(c:speech_start("lua_smith", "p1", opts("chunked")))
    for i = 1, #pcm, 4000 do assert(s:chunk(pcm:sub(i, i + 3999))) end
    assert(s:finish())
    assert.is_true(L.pump({ c }, function() return done.whole and done.chunked end, 15))
    assert.are.equal("Hello there.", heard.whole)
    assert.are.equal("Hello there.", heard.chunked)
    assert.are.equal("stop", done.chunked.finish)
  end)

  it("bad speech is refused with bad_request", function()
    local c = connected_client()
    local err
    c:speech("lua_smith", "p1", "RIFF-not-really-a-wav-file", { format = "wav", on_error = function(e) err = e end })
    assert.is_true(L.pump({ c }, function() return err ~= nil end, 10))
    assert.are.equal("bad_request", err.code)
  end)

  it("barge-in ends the reply cancelled with the text that was voiced", function()
    local c = connected_client()
    local first, done
    local id = c:say("lua_smith", "p1", "[[tps:15]] [[reply:One two three. Four five six seven. Eight nine ten eleven.]]", {
      voice = true,
      on_audio = function(f) first = first or f end,
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    })
    assert.is_true(L.pump({ c }, function() return first ~= nil end, 10))
    c:cancel(id, { barge_in = true })
    assert.is_true(L.pump({ c }, function() return done ~= nil end, 10))
    assert.are.equal("cancelled", done.finish)
    local said = {}
    for _, f in ipairs(done.audio_frames) do
      if f.text ~= "" then said[#said + 1] = f.text end
    end
    assert.are.equal(table.concat(said, " "), done.text)
    assert.is_true(#done.text < #"One two three. Four five six seven. Eight nine ten eleven.")
  end)
end)

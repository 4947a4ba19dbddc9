-- Headless checks of npcbridge.love_voice in a real LÖVE 11: frames become SoundData of the
-- right length, play gaplessly in order on a QueueableSource, the mouth follows each frame's
-- envelope, stop/barge-in silences at once, the recorder reports a missing microphone. With
-- NPCBRIDGE_WS_URL set, the same speaker plays a real server's voiced reply and barge-in cancels
-- one, and a recorded SoundData goes out as a chunked speech. One line per check:
-- "RESULT <name> ok" or "RESULT <name> FAIL <why>"; "DONE <failures>" and exit code 0/1 at the end.
-- tests/test_love_voice.py runs it and also reads the WAV that OpenAL wrote.
local src = love.filesystem.getSource()
package.path = src .. "/../../bindings/lua/?.lua;" .. src .. "/../../bindings/lua/?/init.lua;" .. package.path
local npcbridge = require("npcbridge")
local msgpack = require("npcbridge.msgpack")
local voice = require("npcbridge.voice")
local love_voice = require("npcbridge.love_voice")

local WS_URL = os.getenv("NPCBRIDGE_WS_URL")
local RATE = 24000

-- A pcm16 frame of `seconds` of a 300 Hz tone at `amplitude`, its mouth envelope all `mouth`.
local function tone_frame(seq, seconds, amplitude, mouth, rate)
  rate = rate or RATE
  local n = math.floor(seconds * rate + 0.5)
  local samples = {}
  for i = 1, n do samples[i] = amplitude * math.sin(2 * math.pi * 300 * i / rate) end
  return msgpack.map({
    type = "reply.audio", id = "r-" .. seq, npc = "blacksmith", seq = seq, text = "line " .. seq,
    format = "pcm16", sample_rate = rate, channels = 1, audio = msgpack.bin(voice.pcm16(samples)),
    duration_ms = math.floor(seconds * 1000 + 0.5),
    mouth = msgpack.bin(string.rep(string.char(mouth), math.ceil(seconds * 50))), mouth_hz = 50,
  })
end

local checks, failures = {}, 0
local function check(name, fn) checks[#checks + 1] = { name = name, fn = fn } end

-- Inside a check: wait one frame; wait until cond() or `timeout` seconds.
local function frame() coroutine.yield() end
local function wait_until(cond, timeout)
  local deadline = love.timer.getTime() + timeout
  while not cond() do
    if love.timer.getTime() > deadline then return false end
    frame()
  end
  return true
end
local function expect(ok, why) if not ok then error(why, 2) end end

check("sound_data_has_the_frame_samples", function()
  local f = tone_frame(0, 0.1, 0.5, 0)
  local sd = love_voice.sound_data(f)
  expect(sd:getSampleCount() == 2400, "sample count " .. sd:getSampleCount())
  expect(sd:getSampleRate() == RATE and sd:getChannelCount() == 1 and sd:getBitDepth() == 16, "format")
  expect(math.abs(sd:getDuration() - 0.1) < 1e-6, "duration " .. sd:getDuration())
  local pcm = voice.bytes(f.audio)
  for _, i in ipairs({ 1, 17, 1000, 2400 }) do
    expect(math.abs(sd:getSample(i - 1) - voice.sample(pcm, i)) < 1e-4, "sample " .. i)
  end
  expect(love_voice.pcm16_of(sd) == pcm, "SoundData back to the same PCM16 bytes")
end)

check("plays_frames_in_order_gaplessly", function()
  local events, mouths, stops = {}, {}, 0
  local speaker = love_voice.new_speaker({
    on_start = function() events[#events + 1] = "start" end,
    on_finish = function(reason) events[#events + 1] = "finish " .. reason end,
  })
  -- frames arrive while the previous ones play, as a reply streams in (each 0.1 s or more
  -- before it is due: a busy machine may hold up a LÖVE frame for a while)
  local seconds = { 0.15, 0.15, 0.15, 0.15 }
  local t0 = love.timer.getTime()
  print("MARK gapless_start")
  local pushed, played_order = 0, {}
  local last_played = 0
  while true do
    if pushed < 4 and love.timer.getTime() - t0 >= pushed * 0.05 then
      pushed = pushed + 1
      speaker:push(tone_frame(pushed - 1, seconds[pushed], 0.1 + 0.2 * (pushed - 1), 40 * pushed))
    end
    speaker:update()
    if speaker.frames_played > last_played then
      for k = last_played + 1, speaker.frames_played do played_order[#played_order + 1] = k end
      last_played = speaker.frames_played
    end
    if speaker:is_speaking() then
      mouths[#mouths + 1] = speaker:mouth()
      if not speaker.source:isPlaying() then
        -- the last frame may have ended since the update above: that is the end, not a gap
        speaker:update()
        if speaker:is_speaking() then stops = stops + 1 end
      end
    end
    if pushed == 4 and not speaker:is_speaking() then break end
    expect(love.timer.getTime() - t0 < 3, "still speaking after 3 s")
    frame()
  end
  for k = last_played + 1, speaker.frames_played do played_order[#played_order + 1] = k end
  local elapsed = love.timer.getTime() - t0
  print(string.format("MARK gapless_end %.3f", elapsed))
  expect(table.concat(events, ",") == "start,finish done", "events " .. table.concat(events, ","))
  expect(#played_order == 4, "frames played " .. #played_order)
  expect(stops == 0, "the source ran dry " .. stops .. " times while speaking")
  expect(elapsed >= 0.55, string.format("finished after %.3f s, before the audio could play", elapsed))
  expect(math.abs(speaker:position() - 0.6) < 0.01, "position " .. speaker:position())
  -- the mouth follows the frames: levels 40, 80, 120, 160 (/255), never back down
  local seen, prev = {}, 0
  for _, m in ipairs(mouths) do
    expect(m + 1e-9 >= prev, "mouth went back from " .. prev .. " to " .. m)
    prev = m
    seen[math.floor(m * 255 + 0.5)] = true
  end
  for _, level in ipairs({ 40, 80, 120, 160 }) do expect(seen[level], "mouth level " .. level .. " never seen") end
  expect(speaker:mouth() == 0, "mouth closed after speaking")
end)

check("plays_again_after_running_dry", function()
  -- the next reply's first frame comes after the source ran out: only it plays, once
  local speaker = love_voice.new_speaker()
  speaker:push(tone_frame(0, 0.1, 0.4, 10))
  expect(wait_until(function() speaker:update(); return not speaker:is_speaking() end, 2), "first never finished")
  local t1 = love.timer.getTime()
  wait_until(function() speaker:update(); return love.timer.getTime() - t1 > 0.1 end, 1)
  speaker:push(tone_frame(1, 0.1, 0.4, 10))
  expect(speaker:is_speaking(), "second frame not playing")
  expect(wait_until(function() speaker:update(); return not speaker:is_speaking() end, 2), "second never finished")
  expect(speaker.frames_played == 2 and math.abs(speaker:position() - 0.2) < 0.01, "position " .. speaker:position())
end)

check("stop_silences_at_once", function()
  local finished
  local speaker = love_voice.new_speaker({ on_finish = function(r) finished = r end })
  for seq = 0, 4 do speaker:push(tone_frame(seq, 0.3, 0.5, 200)) end
  local t0 = love.timer.getTime()
  wait_until(function() speaker:update(); return love.timer.getTime() - t0 > 0.2 end, 1)
  expect(speaker:is_speaking() and speaker.source:isPlaying(), "playing before the stop")
  speaker:stop()
  expect(finished == "stopped", "on_finish " .. tostring(finished))
  expect(not speaker:is_speaking() and not speaker.source:isPlaying(), "still playing after stop")
  expect(speaker:mouth() == 0, "mouth open after stop")
  local t1 = love.timer.getTime()
  wait_until(function() speaker:update(); return love.timer.getTime() - t1 > 0.1 end, 1)
  expect(not speaker.source:isPlaying(), "playing again after stop")
  -- a new reply plays again on the same speaker
  speaker:push(tone_frame(0, 0.05, 0.5, 10))
  expect(speaker:is_speaking() and speaker.source:isPlaying(), "a new frame plays after a stop")
  speaker:stop()
end)

check("changes_source_for_another_sample_rate", function()
  local speaker = love_voice.new_speaker()
  speaker:push(tone_frame(0, 0.1, 0.3, 10, 24000))
  speaker:push(tone_frame(1, 0.1, 0.3, 10, 16000))
  local first = speaker.source
  expect(wait_until(function() speaker:update(); return not speaker:is_speaking() end, 2), "still speaking")
  expect(speaker.frames_played == 2, "frames played " .. speaker.frames_played)
  expect(speaker.source ~= first and speaker.format[1] == 16000, "a 16 kHz source")
end)

check("recorder_without_a_working_microphone", function()
  -- OpenAL's wave backend lists a capture device that cannot start: what a machine with no sound
  -- card does. (Real capture needs a microphone; see bindings/lua/README.md.)
  local client = npcbridge.new({ reconnect = false })
  local mic = love_voice.new_recorder()
  local stream, err = mic:start(client, "blacksmith", "p1")
  expect(stream == nil and err and err.code == "no_microphone", "start: " .. tostring(err))
  expect(not mic:is_recording() and #client.queue == 0, "nothing sent")
end)

-- Against a real server (NPCBRIDGE_WS_URL): a voiced reply plays; barge-in cancels and stops.
local function connected()
  local client = npcbridge.new({ url = WS_URL, reconnect = false })
  client:define_npc("love_smith", { name = "Brom", voice = { name = "troy" } })
  client:connect()
  expect(wait_until(function() client:update(); return client:is_ready() end, 10), "no welcome")
  return client
end

if WS_URL then
  check("live_voiced_reply_plays", function()
    local client = connected()
    local speaker = love_voice.new_speaker()
    local done, frames = nil, 0
    client:say("love_smith", "p1", "Fix it? [[reply:Aye, lad. Leave it on the anvil. Come back at dawn.]]", {
      voice = true,
      on_audio = function(f) frames = frames + 1; speaker:push(f) end,
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    })
    expect(wait_until(function() client:update(); speaker:update(); return done ~= nil end, 15), "no reply.end")
    expect(frames >= 2 and #done.audio_frames == frames, "frames " .. frames)
    expect(type(done.voice) == "table" and done.voice.audio_ms > 0, "reply.end voice")
    local total = 0
    for _, f in ipairs(done.audio_frames) do total = total + voice.duration(f) end
    expect(wait_until(function() speaker:update(); return not speaker:is_speaking() end, total + 3), "never finished")
    expect(speaker.frames_played == frames, "played " .. speaker.frames_played .. " of " .. frames)
    expect(math.abs(speaker:position() - total) < 0.01, "played " .. speaker:position() .. " s of " .. total)
    client:close()
  end)

  check("live_barge_in_cancels_and_stops", function()
    local client = connected()
    local speaker = love_voice.new_speaker()
    local done
    client:say("love_smith", "p1", "Tell me. [[tps:15]] [[reply:One two three. Four five six seven. Eight nine ten eleven. Twelve thirteen fourteen.]]", {
      voice = true,
      on_audio = function(f) speaker:push(f) end,
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    })
    expect(wait_until(function() client:update(); speaker:update(); return speaker:is_speaking() end, 10), "never spoke")
    expect(speaker:barge_in(client), "barge_in found no reply")
    expect(not speaker:is_speaking() and not speaker.source:isPlaying(), "still playing")
    expect(wait_until(function() client:update(); return done ~= nil end, 10), "no reply.end")
    expect(done.finish == "cancelled", "finish " .. tostring(done.finish))
    local heard = {}
    for _, f in ipairs(done.audio_frames) do heard[#heard + 1] = f.text end
    expect(#heard >= 1, "no frame before the barge-in")
    -- the reply keeps what was heard: the voiced units, not the whole line
    expect(done.text:find(heard[1], 1, true) == 1, "text " .. done.text .. " does not start with " .. heard[1])
    expect(#done.text < #"One two three. Four five six seven. Eight nine ten eleven. Twelve thirteen fourteen.", "the whole line was kept: " .. done.text)
    client:close()
  end)

  check("live_recorded_sounddata_goes_out_as_speech", function()
    local client = connected()
    local heard, done
    local stream = assert(client:speech_start("love_smith", "p1", {
      on_transcript = function(t) heard = t end,
      on_done = function(r) done = r end,
      on_error = function(e) error(tostring(e)) end,
    }))
    local mic = love_voice.new_recorder()
    mic.stream = stream -- what start() does once the device runs: the SoundData it records goes out
    for _ = 1, 3 do
      local sd = love.sound.newSoundData(800, 16000, 16, 1)
      for i = 0, 799 do sd:setSample(i, 0.3 * math.sin(i / 5)) end
      expect(mic:send(sd), "chunk not sent")
    end
    expect(stream.seq == 1, "0.15 s went out as " .. stream.seq .. " chunks, not batched by 0.1 s")
    mic:stop()
    expect(stream.seq == 2, "the rest went out at stop: " .. stream.seq .. " chunks")
    expect(wait_until(function() client:update(); return done ~= nil end, 15), "no reply.end")
    expect(heard == "Hello there.", "transcript " .. tostring(heard))
    client:close()
  end)
end

local current, co, pause_until = nil, nil, 0
function love.update()
  if love.timer.getTime() < pause_until then return end -- silence between checks, for the WAV
  if not co then
    current = table.remove(checks, 1)
    if not current then
      print("DONE " .. failures)
      love.event.quit(failures == 0 and 0 or 1)
      return
    end
    co = coroutine.create(current.fn)
  end
  local ok, err = coroutine.resume(co)
  if not ok then
    failures = failures + 1
    print("RESULT " .. current.name .. " FAIL " .. tostring(err))
    co, pause_until = nil, love.timer.getTime() + 0.1
  elseif coroutine.status(co) == "dead" then
    print("RESULT " .. current.name .. " ok")
    co, pause_until = nil, love.timer.getTime() + 0.1
  end
end

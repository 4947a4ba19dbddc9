-- Voice without a server: routing of the voice frames, the turn callbacks (audio frames in seq
-- order, on the reply), the speech messages on the wire, and npcbridge.voice's audio helpers.
local npcbridge = require("npcbridge")
local msgpack = require("npcbridge.msgpack")
local router = require("npcbridge.router")
local voice = require("npcbridge.voice")

local function frame(seq, text, pcm, mouth)
  return msgpack.map({
    type = "reply.audio", id = 7, npc = "blacksmith", seq = seq, text = text, format = "pcm16",
    sample_rate = 24000, channels = 1, audio = msgpack.bin(pcm), duration_ms = 1,
    mouth = msgpack.bin(mouth or ""), mouth_hz = 50,
  })
end

-- A client that has done its handshake, whose sent messages land in `sent` (decoded).
local function wired_client()
  local c = npcbridge.new({ reconnect = false })
  local sent = {}
  c.state = "ready"
  c.ws = { send = function(_, bytes) sent[#sent + 1] = assert(msgpack.decode(bytes)); return true end }
  return c, sent
end

describe("voice routing", function()
  it("reply.audio and transcript are frames of the reply, not its end", function()
    local r = router.new()
    r:add(7, "speech")
    for _, t in ipairs({ "transcript", "reply.start", "reply.audio", "reply.delta", "reply.audio" }) do
      local rec, what = r:route({ type = t, id = 7 })
      assert.are.equal(7, rec.id)
      assert.are.equal("stream", what, t)
    end
    local _, what = r:route({ type = "reply.end", id = 7, finish = "stop" })
    assert.are.equal("end", what)
  end)

  it("a refused speech.chunk or speech.end touches no request", function()
    for _, refused in ipairs({ "speech.chunk", "speech.end" }) do
      local r = router.new()
      r:add(3, "speech.start")
      assert.is_nil(r:route({ type = "error", id = 3, code = "bad_request", refused = refused }), refused)
      assert.is_not_nil(r:get(3))
    end
  end)
end)

describe("voice turn callbacks", function()
  it("hands audio frames on in seq order and lists them on the reply", function()
    local c = wired_client()
    local got, done = {}, nil
    local id = c:say("blacksmith", "p1", "hi", {
      voice = true,
      on_audio = function(f) got[#got + 1] = f.seq end,
      on_done = function(r) done = r end,
    })
    for _, m in ipairs({
      { type = "reply.start", id = id }, frame(0, "Aye.", "\1\0"), { type = "reply.delta", id = id, text = "Aye." },
      frame(2, "Off.", "\3\0"), frame(1, "Lad.", "\2\0"), -- 2 before 1: 2 waits for 1
      { type = "reply.end", id = id, finish = "stop", text = "Aye. Lad. Off." },
    }) do
      m.id = id
      c:_route(msgpack.map(m))
    end
    assert.are.same({ 0, 1, 2 }, got)
    assert.are.equal(3, #done.audio_frames)
    assert.are.equal("Lad.", done.audio_frames[2].text)
    assert.are.equal("\2\0", voice.bytes(done.audio_frames[2].audio))
  end)

  it("a reply that fails keeps the frames it had", function()
    local c = wired_client()
    local failed
    local id = c:say("blacksmith", "p1", "hi", { on_error = function(e) failed = e end })
    local f = frame(0, "Aye.", "\1\0")
    f.id = id
    c:_route(f)
    c:_route(msgpack.map({ type = "error", id = id, code = "internal", message = "x" }))
    assert.are.equal(1, #failed.audio_frames)
  end)

  it("say carries voice; cancel carries barge_in", function()
    local c, sent = wired_client()
    c:say("blacksmith", "p1", "hi", { voice = { name = "troy", speed = 1.25 } })
    c:say("blacksmith", "p1", "hi", { voice = false })
    c:cancel(1, { barge_in = true })
    c:cancel(2)
    assert.are.same({ name = "troy", speed = 1.25 }, sent[1].voice)
    assert.are.equal(false, sent[2].voice)
    assert.are.equal(true, sent[3].barge_in)
    assert.is_nil(sent[4].barge_in)
  end)
end)

describe("speech in", function()
  it("sends a whole utterance as bin, WAV recognised by its header", function()
    local c, sent = wired_client()
    local wav = voice.wav(voice.pcm16({ 0, 0.5 }), 16000)
    local id = c:speech("blacksmith", "p1", wav, { urgency = "realtime", voice = true })
    local m = sent[1]
    assert.are.equal("speech", m.type)
    assert.are.equal(id, m.id)
    assert.is_true(msgpack.is_bin(m.audio))
    assert.are.equal(wav, m.audio.data)
    assert.are.same({ "wav", 16000, 1, "realtime", true }, { m.format, m.sample_rate, m.channels, m.urgency, m.voice })
    c:speech("blacksmith", "p1", "\0\0\1\0", { sample_rate = 24000 })
    assert.are.same({ "pcm16", 24000 }, { sent[2].format, sent[2].sample_rate })
  end)

  it("refuses empty audio without sending", function()
    local c, sent = wired_client()
    local id, err = c:speech("blacksmith", "p1", "")
    assert.is_nil(id)
    assert.are.equal("bad_request", err.code)
    assert.are.equal(0, #sent)
  end)

  it("streams chunks between speech.start and speech.end, and reports the transcript", function()
    local c, sent = wired_client()
    local heard, done
    local s = assert(c:speech_start("blacksmith", "p1", {
      on_transcript = function(text) heard = text end,
      on_done = function(r) done = r end,
    }))
    assert(s:chunk("\1\0\2\0"))
    assert(s:chunk("")) -- nothing to send
    assert(s:chunk("\3\0"))
    assert(s:finish())
    assert.is_nil(s:chunk("\4\0"))
    assert.are.same({ "speech.start", "speech.chunk", "speech.chunk", "speech.end" },
      { sent[1].type, sent[2].type, sent[3].type, sent[4].type })
    assert.are.same({ "pcm16", 16000, 1 }, { sent[1].format, sent[1].sample_rate, sent[1].channels })
    assert.is_nil(sent[1].audio)
    assert.are.same({ 0, 1 }, { sent[2].seq, sent[3].seq })
    assert.are.equal("\3\0", sent[3].audio.data)
    for i = 1, 4 do assert.are.equal(s.id, sent[i].id) end
    c:_route(msgpack.map({ type = "transcript", id = s.id, npc = "blacksmith", text = "Fix my sword?" }))
    c:_route(msgpack.map({ type = "reply.end", id = s.id, finish = "stop", text = "Aye." }))
    assert.are.equal("Fix my sword?", heard)
    assert.are.equal("Aye.", done.text)
  end)
end)

describe("npcbridge.voice", function()
  it("reads PCM16 samples and the mouth envelope", function()
    local pcm = voice.pcm16({ 0, 0.5, -0.5, 1, -1, 2 })
    assert.are.equal(12, #pcm)
    assert.are.equal(0.5, math.floor(voice.sample(pcm, 2) * 1000 + 0.5) / 1000)
    assert.are.equal(-0.5, math.floor(voice.sample(pcm, 3) * 1000 + 0.5) / 1000)
    assert.are.equal(32767 / 32768, voice.sample(pcm, 6)) -- clipped
    local f = frame(0, "x", pcm, "\0\255\128")
    assert.are.equal(6, voice.sample_count(f))
    assert.are.equal(0, voice.mouth_at(f, 0.01))
    assert.are.equal(1, voice.mouth_at(f, 0.02))
    assert.are.equal(128 / 255, voice.mouth_at(f, 0.059))
    assert.are.equal(0, voice.mouth_at(f, 0.06)) -- after the envelope
    assert.are.equal(0, voice.mouth_at(f, -1))
  end)

  it("writes a WAV file that a reader would accept", function()
    local w = voice.wav(string.rep("\0", 8), 16000, 2)
    assert.are.equal(44 + 8, #w)
    assert.are.equal("RIFF", w:sub(1, 4))
    assert.are.equal("WAVEfmt ", w:sub(9, 16))
    assert.are.equal("data", w:sub(37, 40))
    assert.are.equal(string.char(0x80, 0x3e, 0, 0), w:sub(25, 28)) -- 16000
    assert.are.equal(string.char(0, 0xfa, 0, 0), w:sub(29, 32)) -- bytes per second 64000
  end)
end)

-- The client's own messages, byte for byte the shared vectors (tests/vectors/).
describe("voice vectors", function()
  local S = require("spec.support")
  local function vector(name) return S.read(S.vectors_dir .. "/" .. name .. ".msgpack") end
  local function bin_of(name, field) return assert(msgpack.decode(vector(name)))[field].data end

  local function raw_client()
    local c = npcbridge.new({ reconnect = false })
    local sent = {}
    c.state = "ready"
    c.ws = { send = function(_, bytes) sent[#sent + 1] = bytes; return true end }
    return c, sent
  end

  it("say with a voice, speech, speech.start/chunk/end and a barge-in cancel", function()
    local c, sent = raw_client()
    c:say("blacksmith", "p1", "Is the mine haunted?", {
      id = "t-9", stream = true, urgency = "normal", voice = { name = "daniel", speed = 1 },
    })
    assert.are.equal(S.hex(vector("say-voice")), S.hex(sent[1]))
    c:cancel("t-9", { barge_in = true })
    assert.are.equal(S.hex(vector("cancel-barge-in")), S.hex(sent[2]))
    c:speech("blacksmith", "p1", bin_of("speech", "audio"), {
      id = "v-1", stream = true, urgency = "realtime", voice = true,
    })
    assert.are.equal(S.hex(vector("speech")), S.hex(sent[3]))
    local s = c:speech_start("blacksmith", "p1", { id = "v-2", stream = true, urgency = "normal", voice = true })
    assert.are.equal(S.hex(vector("speech.start")), S.hex(sent[4]))
    s:chunk(bin_of("speech.chunk", "audio"))
    assert.are.equal(S.hex(vector("speech.chunk")), S.hex(sent[5]))
    s:finish()
    assert.are.equal(S.hex(vector("speech.end")), S.hex(sent[6]))
  end)

  it("a reply.audio frame decodes to PCM16 of its duration and its mouth envelope", function()
    local f = assert(msgpack.decode(vector("reply.audio")))
    assert.is_true(msgpack.is_bin(f.audio) and msgpack.is_bin(f.mouth))
    local samples = voice.sample_count(f)
    assert.are.equal(f.duration_ms, math.floor(samples * 1000 / f.sample_rate + 0.5))
    assert.are.equal(0, voice.sample(f.audio.data, 1))
    assert.are.equal(f.mouth.data:byte(1) / 255, voice.mouth_at(f, 0))
    -- and it reaches on_audio through a say, on the reply too
    local c = raw_client()
    local got, done
    c:say("blacksmith", "p1", "hi", { id = f.id, on_audio = function(x) got = x end, on_done = function(r) done = r end })
    c:_route(f)
    c:_route(assert(msgpack.decode(vector("reply.end-voice"))))
    assert.are.equal(f, got)
    assert.are.equal(f, done.audio_frames[1])
    assert.are.equal(231.5, done.voice.ttfa_ms)
    assert.are.equal(2150, done.voice.audio_ms)
  end)
end)

describe("audio-sized bin payloads", function()
  it("a full 48000-byte frame is a bin16, a 70000-byte chunk a bin32, both ways", function()
    for _, case in ipairs({ { 48000, "c5bb80" }, { 70000, "c600011170" }, { 200, "c4c8" } }) do
      local n, head = case[1], case[2]
      local pcm = string.rep("\1\128", n / 2)
      local bytes = assert(msgpack.encode(msgpack.map({ audio = msgpack.bin(pcm) })))
      -- fixmap of 1, fixstr "audio", then the bin header
      local S = require("spec.support")
      assert.are.equal("81a5617564696f" .. head, S.hex(bytes:sub(1, 7 + #head / 2)))
      assert.are.equal(7 + #head / 2 + n, #bytes)
      local back = assert(msgpack.decode(bytes))
      assert.is_true(msgpack.is_bin(back.audio))
      assert.are.equal(pcm, back.audio.data)
    end
  end)
end)

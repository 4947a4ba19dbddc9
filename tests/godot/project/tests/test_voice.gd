extends NPCBTestCase
## Voice: frames of the vectors decode to streams of the right length, the voice messages go out
## byte for byte as the vectors, and with the engine's web audio driver running (the harness
## starts it so) NPCVoicePlayer / NPCSpeaker play frames gaplessly in order, their signals
## follow, barge-in stops the sound, and the (fake) microphone is captured as speech chunks.

const TestProtocol := preload("res://tests/test_protocol.gd")
const RATE := 24000


func test_reply_audio_vector_decodes_to_a_stream_of_its_length() -> void:
	var decoded := NPCBridgeMsgPack.decode(
		FileAccess.get_file_as_bytes("res://vectors/reply.audio.msgpack")
	)
	if not check(decoded.is_ok(), "reply.audio decodes"):
		return
	var frame: Dictionary = decoded.value
	check(frame["audio"] is PackedByteArray and frame["mouth"] is PackedByteArray, "bin fields")
	var samples := NPCVoice.sample_count(frame)
	check_eq(samples, (frame["audio"] as PackedByteArray).size() / 2, "samples")
	var wav := NPCVoice.frame_to_wav(frame)
	check_eq(wav.mix_rate, frame["sample_rate"], "stream rate")
	check_eq(wav.data.size(), (frame["audio"] as PackedByteArray).size(), "stream bytes")
	check(
		absf(wav.get_length() * 1000.0 - float(frame["duration_ms"])) < 1.0,
		"stream length %f s for %d ms" % [wav.get_length(), frame["duration_ms"]]
	)
	var stereo := NPCVoice.frame_samples(frame)
	check_eq(stereo.size(), samples, "generator frames")
	var third := (frame["audio"] as PackedByteArray).decode_s16(4) / 32768.0
	check_eq(stereo[2], Vector2(third, third), "mono on both sides")
	check_eq(NPCVoice.mouth_at(frame, 0.0), (frame["mouth"] as PackedByteArray)[0] / 255.0, "mouth")
	check_eq(NPCVoice.mouth_at(frame, 0.02), 0.0, "after the envelope")


func test_voice_messages_are_the_vectors_bytes() -> void:
	var fake := _fake()
	var bridge := _open_connection(fake)
	var fields := {"id": "t-9", "stream": true, "urgency": "normal"}
	fields["voice"] = {"name": "daniel", "speed": 1.0}
	bridge.say("blacksmith", "Is the mine haunted?", "p1", fields)
	bridge.cancel("t-9", true)
	var wav: PackedByteArray = _vector("speech")["audio"]
	bridge.speech(
		"blacksmith", wav, "p1", {"id": "v-1", "stream": true, "urgency": "realtime", "voice": true}
	)
	var stream := bridge.speech_start(
		"blacksmith", "p1", {"id": "v-2", "stream": true, "urgency": "normal", "voice": true}
	)
	stream.chunk(_vector("speech.chunk")["audio"])
	stream.finish()
	var names := [
		"say-voice", "cancel-barge-in", "speech", "speech.start", "speech.chunk", "speech.end"
	]
	if check_eq(fake.sent_bytes.size(), names.size(), "messages sent"):
		for i in names.size():
			var expected := FileAccess.get_file_as_bytes("res://vectors/%s.msgpack" % names[i])
			check_eq(fake.sent_bytes[i].hex_encode(), expected.hex_encode(), names[i])
	bridge.close()


func test_audio_sized_bin_payloads_both_ways() -> void:
	# a full 48000-byte frame is a bin16, a 70000-byte chunk a bin32
	for case: Array in [[48000, "c5bb80"], [70000, "c600011170"], [200, "c4c8"]]:
		var pcm := PackedByteArray()
		pcm.resize(case[0])
		pcm.fill(0x80)
		var packed := NPCBridgeMsgPack.encode({"audio": pcm})
		if not check(packed.is_ok(), "%d bytes encode" % case[0]):
			continue
		var bytes: PackedByteArray = packed.value
		var head: String = "81a5617564696f" + case[1]
		check_eq(bytes.slice(0, head.length() / 2).hex_encode(), head, "%d: header" % case[0])
		check_eq(bytes.size(), head.length() / 2 + case[0], "%d: size" % case[0])
		var back := NPCBridgeMsgPack.decode(bytes)
		check(back.is_ok() and back.value["audio"] == pcm, "%d: decodes to the bytes" % case[0])


func test_persona_voice_fields() -> void:
	var persona := NPCPersona.new()
	persona.name = "Brom"
	persona.voice_name = "troy"
	persona.voice_model = "canopylabs/orpheus-v1-english"
	var expected: Dictionary = _vector("npc.define-voice")["persona"]["voice"]
	check_eq(persona.to_dict()["voice"], expected, "voice map as npc.define-voice")
	persona.voice_name = ""
	check(not persona.to_dict().has("voice"), "no voice without a name")


func test_audio_driver_runs() -> void:
	check(
		AudioServer.get_mix_rate() > 0.0,
		"the web audio driver mixes (mix rate %f)" % AudioServer.get_mix_rate()
	)


func test_voice_player_plays_frames_in_order_without_a_gap() -> void:
	await _warm_up_audio()
	var player := AudioStreamPlayer.new()
	add_child(player)
	var voice := NPCVoicePlayer.new(player)
	var events: Array[String] = []
	var mouths: Array[float] = []
	voice.speech_started.connect(func() -> void: events.append("started"))
	voice.frame_started.connect(func(f: Dictionary) -> void: events.append("frame %d" % f["seq"]))
	voice.mouth_changed.connect(func(m: float) -> void: mouths.append(m))
	voice.speech_finished.connect(func(i: bool) -> void: events.append("finished %s" % i))
	var started := Time.get_ticks_msec()
	var skips_while_speaking := 0
	# three frames of 0.2 s, arriving while the previous ones play (as a reply streams in)
	for seq in 3:
		voice.push(_tone(seq, 0.2, 0.1 + 0.3 * seq, 60 * (seq + 1)))
		check(player.playing, "playing after frame %d" % seq)
		await wait_until(
			func() -> bool:
				voice.process()
				return Time.get_ticks_msec() - started > 100 * (seq + 1),
			2.0
		)
		skips_while_speaking = (
			(player.get_stream_playback() as AudioStreamGeneratorPlayback).get_skips()
		)
	voice.close()
	var done := await wait_until(
		func() -> bool:
			voice.process()
			return not voice.is_speaking(),
		5.0
	)
	var elapsed := (Time.get_ticks_msec() - started) / 1000.0
	check(done, "finished")
	check_eq(skips_while_speaking, 0, "the generator never ran dry while frames were coming")
	check_eq(events, ["started", "frame 0", "frame 1", "frame 2", "finished false"], "events")
	check(elapsed >= 0.55, "finished after %.3f s, before 0.6 s of audio could play" % elapsed)
	check(absf(voice.get_length() - 0.6) < 0.001, "length %f" % voice.get_length())
	check(absf(voice.get_position() - 0.6) < 0.001, "position %f" % voice.get_position())
	check(not player.playing, "the player stopped at the end")
	var levels := {}
	for m in mouths:
		levels[roundi(m * 255.0)] = true
	for level: int in [60, 120, 180]:
		check(levels.has(level), "mouth level %d seen (%s)" % [level, str(mouths)])
	check_eq(mouths.back(), 0.0, "mouth closed at the end")


func test_speaker_plays_its_replies_audio_and_barge_in_stops_it() -> void:
	await _warm_up_audio()
	var fake := _fake()
	var bridge := _open_connection(fake)
	var player := AudioStreamPlayer3D.new()  # a positional voice
	add_child(player)
	var speaker := NPCSpeaker.new()
	speaker.npc_id = "blacksmith"
	speaker.connection = bridge
	speaker.audio_player = player
	add_child(speaker)
	var events: Array[String] = []
	var mouths: Array[float] = []
	speaker.speech_started.connect(func() -> void: events.append("started"))
	speaker.speech_finished.connect(func(i: bool) -> void: events.append("finished %s" % i))
	speaker.mouth_changed.connect(func(m: float) -> void: mouths.append(m))
	var reply := speaker.say("Tell me about the mine.")
	await wait_until(func() -> bool: return fake.sent.size() == 1, 2.0)
	check_eq(fake.sent[0].get("voice"), true, "say asks for voice")
	var id: Variant = fake.sent[0]["id"]
	fake.deliver({"type": "reply.start", "id": id, "npc": "blacksmith", "model": "m"})
	for seq in 4:
		var frame := _tone(seq, 0.4, 0.5, 100)
		frame["id"] = id
		fake.deliver(frame)
	check_eq(reply.audio_frames.size(), 4, "frames on the reply")
	check(speaker.is_speaking_aloud() and player.playing, "speaking aloud")
	await wait_seconds(0.3)
	check(speaker.voice.get_position() > 0.05, "audio plays (%f s)" % speaker.voice.get_position())
	check(mouths.has(100 / 255.0), "mouth open while speaking")
	speaker.barge_in()
	check(not player.playing and not speaker.is_speaking_aloud(), "barge-in stops the sound")
	check_eq(events, ["started", "finished true"], "signals")
	check_eq(mouths.back(), 0.0, "mouth closed")
	check_eq(fake.sent.back(), {"type": "cancel", "id": id, "barge_in": true}, "barge-in cancel")
	# a frame already on its way when the player interrupted is not played
	var late := _tone(4, 0.2, 0.5, 100)
	late["id"] = id
	fake.deliver(late)
	check(not player.playing, "a late frame stays silent")
	fake.deliver(
		{"type": "reply.end", "id": id, "npc": "blacksmith", "finish": "cancelled", "text": ""}
	)
	await reply.wait()
	check_eq(reply.finish, "cancelled", "the reply ended cancelled")
	bridge.close()


func test_reply_hands_audio_on_in_seq_order() -> void:
	var fake := _fake()
	var bridge := _open_connection(fake)
	var reply := NPCReply.new("blacksmith", "hi")
	reply.attach(bridge.say("blacksmith", "hi", "p1", {"voice": true}))
	var id: Variant = fake.sent[0]["id"]
	var order: Array[int] = []
	reply.audio_received.connect(func(f: Dictionary) -> void: order.append(f["seq"]))
	for seq: int in [0, 2, 1, 4]:  # 2 waits for 1; 4 never gets its 3 and comes at the end
		var frame := _tone(seq, 0.01, 0.1, 1)
		frame["id"] = id
		fake.deliver(frame)
	check_eq(order, [0, 1, 2], "in order so far")
	fake.deliver({"type": "reply.end", "id": id, "npc": "blacksmith", "finish": "stop", "text": ""})
	await reply.wait()
	check_eq(order, [0, 1, 2, 4], "the rest at the end")
	check_eq(reply.audio_frames.size(), 4, "on the reply")
	bridge.close()


func test_microphone_is_captured_as_pcm16() -> void:
	# Chromium's fake capture device (--use-fake-device-for-media-stream) beeps.
	var capture := NPCVoiceCapture.new(self)
	if not check_eq(capture.start(), OK, "capture starts (audio/driver/enable_input)"):
		return
	var recorded := PackedByteArray()
	var started := Time.get_ticks_msec()
	await wait_until(
		func() -> bool:
			recorded.append_array(capture.read())
			return Time.get_ticks_msec() - started > 1500,
		3.0
	)
	recorded.append_array(capture.stop())
	var seconds := recorded.size() / 2.0 / capture.get_sample_rate()
	check(seconds > 0.8 and seconds < 2.0, "%.2f s recorded in 1.5 s" % seconds)
	var peak := 0
	for i in range(0, recorded.size(), 2):
		peak = maxi(peak, absi(recorded.decode_s16(i)))
	check(peak > 3000, "the microphone's beep is in the recording (peak %d)" % peak)
	check(not capture.is_recording(), "stopped")


func test_push_to_talk_sends_speech_chunks() -> void:
	var fake := _fake()
	var bridge := _open_connection(fake)
	var speaker := NPCSpeaker.new()
	speaker.npc_id = "blacksmith"
	speaker.connection = bridge
	add_child(speaker)
	var reply := speaker.start_talking({"hour": 21})
	check(speaker.is_talking(), "talking")
	await wait_seconds(0.6)
	speaker.stop_talking()
	var types: Array[String] = []
	var audio := 0
	for message in fake.sent:
		types.append(str(message["type"]))
		if message["type"] == "speech.chunk":
			check_eq(message["seq"], types.count("speech.chunk") - 1, "chunk seq")
			audio += (message["audio"] as PackedByteArray).size()
	if check(types.size() >= 3, "messages %s" % str(types)):
		check_eq(types.front(), "speech.start", "speech.start first")
		check_eq(types.back(), "speech.end", "speech.end last")
		check_eq(fake.sent[0]["sample_rate"], int(AudioServer.get_mix_rate()), "rate")
		check_eq(fake.sent[0]["context"], {"hour": 21}, "context")
	var seconds := audio / 2.0 / AudioServer.get_mix_rate()
	check(seconds > 0.3, "%.2f s of audio sent" % seconds)
	var chunks := types.count("speech.chunk")
	check(
		chunks <= ceili(seconds / speaker.chunk_s) + 1, "%d chunks for %.2f s" % [chunks, seconds]
	)
	var id: Variant = fake.sent[0]["id"]
	fake.deliver({"type": "transcript", "id": id, "npc": "blacksmith", "text": "Fix my sword?"})
	fake.deliver(
		{"type": "reply.end", "id": id, "npc": "blacksmith", "finish": "stop", "text": "Aye."}
	)
	await reply.wait()
	check_eq([reply.transcript, reply.text], ["Fix my sword?", "Aye."], "transcript and reply")
	bridge.close()


func test_server_reply_is_spoken_in_full() -> void:
	if not require_server():
		return
	await _warm_up_audio()
	var bridge := new_connection()
	bridge.connect_to_server()
	if not check(await wait_until(bridge.is_open, 15.0), "connected"):
		return
	check("voice" in bridge.welcome.get("features", []), "the server offers voice")
	var speaker := _live_speaker(bridge)
	var events: Array[String] = []
	speaker.speech_started.connect(func() -> void: events.append("started"))
	speaker.speech_finished.connect(func(i: bool) -> void: events.append("finished %s" % i))
	var line := "Aye, lad. Leave it on the anvil. Come back at dawn."
	var reply := speaker.say("Fix it? [[reply:%s]]" % line)
	await reply.wait()
	check(reply.is_ok(), "reply ok: %s %s" % [reply.error_code, reply.error_message])
	check_eq(reply.text, line, "text")
	var seconds := 0.0
	var said: Array[String] = []
	for i in reply.audio_frames.size():
		var frame := reply.audio_frames[i]
		check_eq(frame["seq"], i, "frame %d in order" % i)
		seconds += NPCVoice.frame_to_wav(frame).get_length()
		if not str(frame["text"]).is_empty():
			said.append(str(frame["text"]))
	check(reply.audio_frames.size() >= 2, "frames: %d" % reply.audio_frames.size())
	check_eq(" ".join(said), line, "the frames say the line")
	var report: Dictionary = reply.info.get("voice", {})
	check(int(report.get("audio_ms", 0)) > 0, "reply.end voice %s" % str(report))
	check(
		await wait_until(func() -> bool: return "finished false" in events, seconds + 5.0),
		"spoken to the end (%s)" % str(events)
	)
	check_eq(events, ["started", "finished false"], "signals")
	check(
		absf(speaker.voice.get_position() - seconds) < 0.01,
		"%f s of %f played" % [speaker.voice.get_position(), seconds]
	)
	bridge.close()


func test_talking_over_the_npc_barges_in_and_is_heard() -> void:
	if not require_server():
		return
	await _warm_up_audio()
	var bridge := new_connection()
	bridge.connect_to_server()
	if not check(await wait_until(bridge.is_open, 15.0), "connected"):
		return
	var speaker := _live_speaker(bridge)
	var heard: Array[String] = []
	speaker.transcript_received.connect(func(text: String) -> void: heard.append(text))
	var line := "One two three. Four five six seven. Eight nine ten eleven. Twelve thirteen."
	var reply := speaker.say("Go on. [[tps:15]] [[reply:%s]]" % line)
	check(await wait_until(speaker.is_speaking_aloud, 10.0), "the NPC speaks")
	var answer := speaker.start_talking()
	check(not speaker.is_speaking_aloud(), "silent as soon as the player talks")
	await reply.wait()
	check_eq(reply.finish, "cancelled", "the reply was cancelled")
	var voiced: Array[String] = []
	for frame in reply.audio_frames:
		if not str(frame["text"]).is_empty():
			voiced.append(str(frame["text"]))
	check_eq(reply.text, " ".join(voiced), "the reply keeps what was voiced")
	check(reply.text.length() < line.length(), "not the whole line: %s" % reply.text)
	# 1.5 s of talk: as one chunk a frame it would be 90 messages, over the server's 50 a second
	await wait_seconds(1.5)
	speaker.stop_talking()
	await answer.wait()
	check(answer.is_ok(), "answer ok: %s %s" % [answer.error_code, answer.error_message])
	check_eq(heard, ["Hello there."], "the microphone was transcribed")
	check_eq(answer.transcript, "Hello there.", "transcript on the reply")
	check(not answer.text.is_empty(), "the NPC answered the speech")
	bridge.close()


func _live_speaker(bridge: NPCBridgeConnection) -> NPCSpeaker:
	var persona := NPCPersona.new()
	persona.name = "Brom"
	persona.voice_name = "troy"
	var player := AudioStreamPlayer2D.new()
	add_child(player)
	var speaker := NPCSpeaker.new()
	speaker.npc_id = "gd_voice_smith"
	speaker.persona = persona
	speaker.player_id = "gd-voice"
	speaker.connection = bridge
	speaker.audio_player = player
	add_child(speaker)
	return speaker


## Plays half a second of silence: the browser's audio starts by racing through its first
## buffers, which would make the first frames of a test look played before their time.
func _warm_up_audio() -> void:
	var player := AudioStreamPlayer.new()
	add_child(player)
	player.stream = AudioStreamGenerator.new()
	player.play()
	await wait_seconds(0.5)
	player.queue_free()


func _fake() -> TestProtocol.FakeSocket:
	var fake := TestProtocol.FakeSocket.new()
	add_child(fake)
	return fake


## A connection over [param fake], past the handshake.
func _open_connection(fake: TestProtocol.FakeSocket) -> NPCBridgeConnection:
	var bridge := NPCBridgeConnection.new(fake)
	add_child(bridge)
	bridge.connect_to_server("ws://fake.invalid/")
	fake.opened.emit()
	fake.deliver({"type": "welcome", "protocol": 1, "session": "fake", "server": "npcbridge/x"})
	fake.sent.clear()
	fake.sent_bytes.clear()
	return bridge


func _vector(name: String) -> Dictionary:
	return (
		NPCBridgeMsgPack
		. decode(FileAccess.get_file_as_bytes("res://vectors/%s.msgpack" % name))
		. value
	)


## A pcm16 frame of [param seconds] of a 300 Hz tone, its mouth envelope all [param mouth].
func _tone(seq: int, seconds: float, amplitude: float, mouth: int) -> Dictionary:
	var count := int(seconds * RATE)
	var pcm := PackedByteArray()
	pcm.resize(count * 2)
	for i in count:
		pcm.encode_s16(i * 2, int(amplitude * 32767.0 * sin(TAU * 300.0 * i / RATE)))
	var envelope := PackedByteArray()
	envelope.resize(ceili(seconds * 50.0))
	envelope.fill(mouth)
	return {
		"type": "reply.audio",
		"id": "r",
		"npc": "blacksmith",
		"seq": seq,
		"text": "line %d" % seq,
		"format": "pcm16",
		"sample_rate": RATE,
		"channels": 1,
		"audio": pcm,
		"duration_ms": roundi(seconds * 1000.0),
		"mouth": envelope,
		"mouth_hz": 50,
	}

extends NPCBTestCase
## NPCSpeaker and NPCPersona: streamed replies, signals, await, cancel, errors.

const SMITH_LINE := "Aye lad, leave it on the anvil and come back at dawn."

var _bridge: NPCBridgeConnection = null


func test_persona_to_dict_leaves_out_empty_fields() -> void:
	var persona := NPCPersona.new()
	persona.name = "Aelindra"
	persona.speech_style = "formal"
	persona.temperature = 0.5
	check_eq(
		persona.to_dict(),
		{"name": "Aelindra", "speech_style": "formal", "temperature": 0.5},
		"persona map"
	)
	check_eq(_smith_persona().to_dict()["knowledge"], ["The mine closed last winter."], "knowledge")


func test_autoload_is_registered() -> void:
	var autoload := get_node_or_null(^"/root/NPCBridge")
	check(autoload is NPCBridgeConnection, "NPCBridge autoload is an NPCBridgeConnection")
	if autoload is NPCBridgeConnection:
		check_eq(autoload.url, NPCBridgeSettings.DEFAULT_URL, "url from the project settings")
		check_eq(autoload.state, NPCBridgeConnection.State.DISCONNECTED, "autoconnect=false obeyed")


func test_streamed_reply_signals_in_order() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var speaker := _speaker("gd_smith", _smith_persona())
	var events: Array[String] = []
	var pieces: Array[String] = []
	var finished_info: Array[Dictionary] = []
	var finished_text: Array[String] = []
	speaker.reply_started.connect(func() -> void: events.append("started"))
	speaker.reply_delta_received.connect(
		func(piece: String) -> void:
			events.append("delta")
			pieces.append(piece)
	)
	speaker.reply_finished.connect(
		func(text: String, info: Dictionary) -> void:
			events.append("finished")
			finished_info.append(info)
			finished_text.append(text)
	)
	speaker.reply_failed.connect(
		func(code: String, _m: String) -> void: events.append("failed " + code)
	)
	var reply := speaker.say("Can you fix my sword? [[reply:%s]]" % SMITH_LINE, {"hour": 21})
	check(speaker.is_speaking(), "speaking while the reply streams")
	await reply.wait()
	check(reply.is_ok(), "reply ok: %s %s" % [reply.error_code, reply.error_message])
	check_eq(reply.text, SMITH_LINE, "full text")
	check_eq("".join(pieces), SMITH_LINE, "deltas add up to the text")
	check(pieces.size() >= 3, "several deltas (%d)" % pieces.size())
	check_eq(events.front(), "started", "reply_started first")
	check_eq(events.back(), "finished", "reply_finished last")
	check_eq(events.count("started"), 1, "one reply_started")
	check_eq(events.count("finished"), 1, "one reply_finished")
	check_eq(events.count("delta"), pieces.size(), "only deltas in between")
	check_eq(reply.finish, "stop", "finish")
	check_eq(finished_text, [SMITH_LINE], "reply_finished text")
	if check_eq(finished_info.size(), 1, "info given"):
		check_eq(finished_info[0].get("npc"), "gd_smith", "info.npc")
		check(finished_info[0].get("usage") is Dictionary, "info.usage")
		check(finished_info[0].get("timing") is Dictionary, "info.timing")
	check(not speaker.is_speaking(), "not speaking after the end")
	# A second line reuses the definition and can be awaited in one expression.
	var again := await speaker.say("[[reply:Off with you.]]").wait()
	check_eq(again.text, "Off with you.", "second reply")


func test_two_npcs_talk_at_once() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var smith := _speaker("blacksmith")
	var mage := _speaker("mage")
	var order: Array[String] = []
	smith.reply_delta_received.connect(func(_p: String) -> void: order.append("smith"))
	mage.reply_delta_received.connect(func(_p: String) -> void: order.append("mage"))
	var smith_line := "Blades sharpened while you wait, lad, two silver a piece and no haggling."
	var mage_line := "Do not touch the crystals, child. They are older than your entire kingdom."
	var a := smith.say("[[tps:25]] [[reply:%s]]" % smith_line)
	var b := mage.say("[[tps:25]] [[reply:%s]]" % mage_line)
	await a.wait()
	await b.wait()
	check(a.is_ok() and b.is_ok(), "both replies ok: %s %s" % [a.error_code, b.error_code])
	check_eq(a.text, smith_line, "blacksmith text")
	check_eq(b.text, mage_line, "mage text")
	check(a.request.id != b.request.id, "different request ids")
	# Interleaved: the mage spoke before the blacksmith was done.
	var last_smith := order.rfind("smith")
	var first_mage := order.find("mage")
	check(first_mage != -1 and first_mage < last_smith, "deltas interleave: %s" % [order])


func test_cancel_stops_the_reply() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var speaker := _speaker("blacksmith")
	var reply := speaker.say("[[slow]] tell me everything")
	check(await wait_until(func() -> bool: return not reply.text.is_empty(), 10.0), "first delta")
	var started := Time.get_ticks_msec()
	speaker.cancel()
	await reply.wait()
	check(Time.get_ticks_msec() - started < 3000, "cancelled quickly")
	check(reply.is_ok(), "a cancelled reply still finishes: " + reply.error_code)
	check_eq(reply.finish, "cancelled", "finish cancelled")
	check(reply.text.split(" ").size() < 150, "only part of the slow reply")


func test_unknown_npc_fails_through_the_speaker() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var speaker := _speaker("no_such_npc_here")
	var failures: Array = []
	speaker.reply_failed.connect(
		func(code: String, message: String) -> void: failures.append([code, message])
	)
	var reply := await speaker.say("hello?").wait()
	check(not reply.is_ok(), "failed")
	check_eq(reply.error_code, "unknown_npc", "code")
	check_eq(failures.size(), 1, "reply_failed once")
	if failures.size() == 1:
		check_eq(failures[0][0], "unknown_npc", "reply_failed code")


func test_action_and_emote_signals() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var speaker := _speaker("gd_shop_smith", _smith_persona())
	var actions: Array = []
	var emotes: Array[String] = []
	speaker.action_requested.connect(
		func(action: String, args: Dictionary) -> void: actions.append([action, args])
	)
	speaker.emote_received.connect(func(emote: String) -> void: emotes.append(emote))
	var reply := await speaker.say("[[tool:open_shop:{}]] show me your wares").wait()
	check(reply.is_ok(), "reply ok: %s %s" % [reply.error_code, reply.error_message])
	check_eq(actions, [["open_shop", {}]], "action_requested")
	check_eq(reply.actions, [{"name": "open_shop", "args": {}}], "reply.actions")
	var line := "[[reply:*wipes his hands on his apron* Aye, lad.]]"
	var emoted := await speaker.say(line).wait()
	check(emoted.is_ok(), "emote reply ok: " + emoted.error_code)
	check_eq(emotes, ["wipes his hands on his apron"], "emote_received")
	check_eq(Array(emoted.emotes), ["wipes his hands on his apron"], "reply.emotes")
	check_eq(emoted.text.strip_edges(), "Aye, lad.", "the emote left the spoken text")


func test_upstream_cut_mid_reply_fails_with_partial_text() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var speaker := _speaker("blacksmith")
	var failures: Array = []
	var finished: Array[String] = []
	speaker.reply_failed.connect(func(code: String, _m: String) -> void: failures.append(code))
	speaker.reply_finished.connect(
		func(text: String, _i: Dictionary) -> void: finished.append(text)
	)
	var line := "[[reply:One two three four five six seven eight nine ten.]] [[cut:3]]"
	var reply := await speaker.say(line).wait()
	check(not reply.is_ok(), "the reply failed")
	check_eq(failures.size(), 1, "reply_failed once")
	check_eq(finished, [], "no reply_finished")
	check_eq(reply.error_code, "upstream_error", "error code")
	# Deltas were sent, so the server ended the reply (finish "error", the partial text) and then
	# sent the error.
	check_eq(reply.finish, "error", "reply.end finish")
	check(reply.text.begins_with("One two three"), "partial text kept: " + reply.text)


func _open() -> bool:
	_bridge = new_connection()
	_bridge.connect_to_server()
	return await wait_until(_bridge.is_open, 15.0)


func _speaker(npc_id: String, persona: NPCPersona = null) -> NPCSpeaker:
	var speaker := NPCSpeaker.new()
	speaker.npc_id = npc_id
	speaker.persona = persona
	speaker.player_id = "gd-tester"
	speaker.connection = _bridge
	add_child(speaker)
	return speaker


func _smith_persona() -> NPCPersona:
	var persona := NPCPersona.new()
	persona.name = "Brom"
	persona.description = "The village blacksmith, rough but kind."
	persona.personality = "gruff, honest, protective of the village"
	persona.speech_style = "short sentences, calls everyone 'lad'"
	persona.knowledge = PackedStringArray(["The mine closed last winter."])
	persona.actions = [
		{
			"name": "open_shop",
			"description": "Show the shop window to the player.",
			"parameters": {"type": "object", "properties": {}},
		}
	]
	return persona

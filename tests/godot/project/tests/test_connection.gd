extends NPCBTestCase
## NPCBridgeConnection against a real npcbridge server (the test stack).


func test_connects_and_gets_welcome() -> void:
	if not require_server():
		return
	var bridge := _connection()
	var welcomes: Array[Dictionary] = []
	bridge.connected.connect(func(welcome: Dictionary) -> void: welcomes.append(welcome))
	check(await _open(bridge), "handshake completes")
	check_eq(welcomes.size(), 1, "connected emitted once")
	check_eq(bridge.welcome.get("type"), "welcome", "welcome stored")
	check_eq(bridge.welcome.get("protocol"), 1, "protocol version")
	check(not bridge.session.is_empty(), "session id")
	check(str(bridge.welcome.get("server", "")).begins_with("npcbridge/"), "server name")
	check(bridge.welcome.get("models") is Array, "models listed")
	check_eq(bridge.state, NPCBridgeConnection.State.OPEN, "state OPEN")


func test_generic_request_and_unknown_type() -> void:
	if not require_server():
		return
	var bridge := _connection()
	bridge.connect_to_server()
	# Made before the handshake: queued, sent after welcome.
	var ping := bridge.request("ping")
	check_eq(bridge.state, NPCBridgeConnection.State.CONNECTING, "still connecting")
	check(await wait_until(bridge.is_open, 15.0), "connected")
	await ping.wait()
	check(ping.is_ok(), "ping answered: " + ping.error_code)
	check_eq(ping.response.get("type"), "pong", "pong")
	check_eq(ping.response.get("id"), ping.id, "same id")
	var unknown := await bridge.request("x.nobody_handles_this", {"n": 1}).wait()
	check_eq(unknown.error_code, "unknown_type", "x.* without a plugin")
	check_eq(bridge.pending_count(), 0, "nothing left pending")


func test_generic_request_for_memory_messages() -> void:
	if not require_server():
		return
	var bridge := _connection()
	check(await _open(bridge), "connected")
	var fact := {"npc": "blacksmith", "player": "gd-mem", "text": "the player stole the sword"}
	var added := await bridge.request("memory.add", fact).wait()
	check(added.is_ok(), "memory.add: %s %s" % [added.error_code, added.error_message])
	check_eq(added.response.get("type"), "ok", "memory.add answered ok")
	var query := {"npc": "blacksmith", "player": "gd-mem", "text": "sword"}
	var found := await bridge.request("memory.query", query).wait()
	check(found.is_ok(), "memory.query: %s %s" % [found.error_code, found.error_message])
	check_eq(found.response.get("type"), "memory", "memory.query answer type")
	var texts: Array = []
	for item: Variant in found.response.get("items", []):
		texts.append(item.get("text") if item is Dictionary else null)
	check("the player stole the sword" in texts, "the fact is recalled: %s" % [texts])


func test_server_error_unknown_npc_as_value_and_signal() -> void:
	if not require_server():
		return
	var bridge := _connection()
	var errors: Array = []
	bridge.error_received.connect(
		func(code: String, message: String, id: Variant) -> void: errors.append([code, id])
	)
	check(await _open(bridge), "connected")
	var request := await bridge.say("nobody_by_that_name", "hello?").wait()
	check(request.done and not request.is_ok(), "the say failed")
	check_eq(request.error_code, "unknown_npc", "error code")
	check(not request.error_message.is_empty(), "error message")
	check_eq(errors, [["unknown_npc", request.id]], "error_received with the request id")
	check(bridge.is_open(), "the connection stays open")


func test_wrong_token_is_fatal_and_not_retried() -> void:
	if not require_server():
		return
	if options.get("token", "") == "":
		skipped = "the test server has no token"
		return
	var bridge := _connection()
	bridge.token = "not-the-token"
	var errors: Array[String] = []
	var drops: Array[int] = []
	var retries: Array[int] = []
	bridge.error_received.connect(
		func(code: String, _m: String, _id: Variant) -> void: errors.append(code)
	)
	bridge.disconnected.connect(func(code: int, _r: String) -> void: drops.append(code))
	bridge.reconnecting.connect(func(attempt: int, _d: float) -> void: retries.append(attempt))
	bridge.connect_to_server()
	var queued := bridge.request("ping")
	check(await wait_until(func() -> bool: return not drops.is_empty(), 10.0), "closed")
	await wait_seconds(1.0)
	check_eq(errors, ["unauthorized"], "error_received unauthorized")
	check_eq(drops, [4001], "closed with 4001")
	check_eq(retries, [], "no reconnect after unauthorized")
	check_eq(bridge.state, NPCBridgeConnection.State.DISCONNECTED, "disconnected")
	check(queued.done and not queued.is_ok(), "the queued request failed: " + queued.error_code)


func test_request_timeout() -> void:
	if not require_server():
		return
	var bridge := _connection()
	bridge.request_timeout_s = 1.0
	check(await _open(bridge), "connected")
	var started := Time.get_ticks_msec()
	var stalled := await bridge.say("blacksmith", "[[stall:4]] hello?").wait()
	check_eq(stalled.error_code, NPCBridgeRequest.TIMEOUT, "timed out")
	check(Time.get_ticks_msec() - started < 3000, "after about a second")
	check(bridge.is_open(), "the connection stays open")
	check_eq(bridge.pending_count(), 0, "nothing pending")
	var ping := await bridge.request("ping").wait()
	check(ping.is_ok(), "later requests work")


func test_request_on_closed_connection_fails_as_value() -> void:
	var bridge := NPCBridgeConnection.new()
	add_child(bridge)
	var request := bridge.request("ping")
	await request.wait()
	check_eq(request.error_code, NPCBridgeRequest.NOT_SENT, "not sent")
	check_eq(bridge.send_message({"type": "ping"}), ERR_CONNECTION_ERROR, "send_message errors")


func test_unreachable_server_is_reported_and_queued_requests_fail() -> void:
	# Port 1: nothing listens there (and browsers refuse it), so every attempt fails.
	var bridge := NPCBridgeConnection.new()
	bridge.reconnect_min_s = 0.2
	bridge.reconnect_max_s = 0.2
	bridge.queue_timeout_s = 1.5
	add_child(bridge)
	var failures: Array[String] = []
	bridge.connection_failed.connect(func(why: String) -> void: failures.append(why))
	bridge.connect_to_server("ws://127.0.0.1:1/")
	var queued := await bridge.request("ping").wait()
	check_eq(queued.error_code, NPCBridgeRequest.NOT_CONNECTED, "the queued request fails")
	check(failures.size() >= 2, "connection_failed for every attempt: %s" % [failures])
	check(failures.size() > 0 and "127.0.0.1:1" in failures[0], "names the URL: %s" % [failures])
	check(bridge.state != NPCBridgeConnection.State.OPEN, "never open")
	bridge.close()


func test_reconnects_after_server_restart() -> void:
	if not require_server():
		return
	set_meta("timeout_s", 40.0)
	var bridge := _connection()
	check(await _open(bridge), "connected")
	var defined := await (
		bridge
		. define_npc(
			"gd_restart_guard",
			{"name": "Guard", "description": "A sleepy gate guard.", "speech_style": "yawns a lot"},
		)
		. wait()
	)
	check(defined.is_ok(), "npc.define ok: " + defined.error_code)
	var first_session := bridge.session
	var drops: Array[int] = []
	var retries: Array[int] = []
	bridge.disconnected.connect(func(code: int, _reason: String) -> void: drops.append(code))
	bridge.reconnecting.connect(func(attempt: int, _delay: float) -> void: retries.append(attempt))
	var slow := bridge.say("blacksmith", "[[slow]] talk to me")
	var status := await _restart_server(800)
	check_eq(status, 200, "control/restart answered")
	check(await wait_until(func() -> bool: return not drops.is_empty(), 10.0), "disconnected")
	await slow.wait()
	check_eq(slow.error_code, NPCBridgeRequest.CONNECTION_LOST, "in-flight say fails")
	check(await wait_until(func() -> bool: return bridge.connect_count >= 2, 20.0), "reconnected")
	check(not retries.is_empty(), "reconnecting emitted")
	check(bridge.session != first_session, "a new session")
	# The NPC defined before the restart was defined again on the new session.
	var reply := await bridge.say("gd_restart_guard", "[[reply:Halt. Who goes there?]]").wait()
	check(reply.is_ok(), "say after reconnect: %s %s" % [reply.error_code, reply.error_message])
	check_eq(reply.response.get("text"), "Halt. Who goes there?", "reply after reconnect")


func _connection() -> NPCBridgeConnection:
	return new_connection()


func _open(bridge: NPCBridgeConnection) -> bool:
	bridge.connect_to_server()
	return await wait_until(bridge.is_open, 15.0)


func _restart_server(down_ms: int) -> int:
	var http := HTTPRequest.new()
	add_child(http)
	var url := "%s/control/restart?down_ms=%d" % [options["harness"], down_ms]
	var error := http.request(url, [], HTTPClient.METHOD_POST, "")
	if error != OK:
		return -1
	var result: Array = await http.request_completed
	http.queue_free()
	return result[1]

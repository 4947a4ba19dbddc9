extends NPCBTestCase
## NPCBridgeProtocol over a fake socket adapter (no server): every shared flow vector
## (tests/vectors/flows.json) runs through it, plus request ids, and what a game sees when no
## server can be reached.

# gdlint: disable=max-returns

const MsgPack := preload("res://addons/npcbridge/msgpack.gd")
const FLOWS := "res://vectors/flows.json"
const CANONICAL := "res://vectors/canonical.json"


## JSON numbers are floats; ids (and parents) of the flows are ints when whole.
static func _id_of(value: Variant) -> Variant:
	if value is float and value == floorf(value):
		return int(value)
	return value


static func _key_id(key: String) -> Variant:
	return int(key) if key.is_valid_int() else key


func test_every_flow_vector_through_the_protocol() -> void:
	var flows: Array = JSON.parse_string(FileAccess.get_file_as_string(FLOWS))["flows"]
	check(flows.size() >= 10, "flows.json has its flows")
	var finished := 0
	for flow: Dictionary in flows:
		finished += 1 if _run_flow(flow) else 0
	# A runtime error ends a function silently in the release build: count the flows run through.
	check_eq(finished, flows.size(), "every flow ran to its end")


func test_request_ids_given_or_numbered() -> void:
	var fake := _fake()
	var protocol := _open_protocol(fake)
	var numbered := protocol.request("ping")
	var named := protocol.request("ping", {"id": "t-1"})
	check_eq(fake.sent.map(func(m: Dictionary) -> Variant: return m.get("id")), [1, "t-1"], "ids")
	var again := protocol.request("ping", {"id": "t-1"})
	var long := protocol.request("ping", {"id": "x".repeat(129)})
	var odd := protocol.request("ping", {"id": 1.5})
	await get_tree().process_frame
	check_eq(again.error_code, NPCBridgeRequest.NOT_SENT, "an id in use is refused")
	check_eq(long.error_code, NPCBridgeRequest.NOT_SENT, "a string id over 128 bytes is refused")
	check_eq(odd.error_code, NPCBridgeRequest.NOT_SENT, "a float id is refused")
	check_eq(fake.sent.size(), 2, "nothing more was sent")
	check(not numbered.done and not named.done, "the first two still wait")
	fake.deliver({"type": "pong", "id": "t-1"})
	check(named.is_ok() and not numbered.done, "answers go by id")


func test_say_sends_the_canonical_bytes() -> void:
	# The say messages of the canonical vectors, made with say(): a whole-number temperature stays
	# float64, unset (null) fields are left out, context keys beyond the BMP sort by UTF-8 bytes.
	var fake := _fake()
	var protocol := _open_protocol(fake)
	var cases: Array = JSON.parse_string(FileAccess.get_file_as_string(CANONICAL))["cases"]
	var said := 0
	for case: Dictionary in cases:
		var message: Dictionary = untag(case["message"])
		if message["type"] != "say":
			continue
		said += 1
		var fields := message.duplicate()
		for key: String in ["type", "npc", "text", "player"]:
			fields.erase(key)
		fake.sent_bytes.clear()
		protocol.say(message["npc"], message["text"], message["player"], fields)
		var name: String = case["name"]
		if check_eq(fake.sent_bytes.size(), 1, "%s: sent" % name):
			check_eq(fake.sent_bytes[0].hex_encode(), case["hex"], "%s: bytes" % name)
	check(said >= 3, "the say cases ran (%d)" % said)


func test_queued_requests_go_out_in_order_after_the_handshake() -> void:
	var fake := _fake()
	var protocol := NPCBridgeProtocol.new(fake)
	protocol.connect_to_server("ws://fake.invalid/")
	protocol.define_npc("brom", {"name": "Brom"})
	var ping := protocol.request("ping", {"id": "q-1"})
	var twin := protocol.request("ping", {"id": "q-1"})
	var said := protocol.say("brom", "hello?")
	await get_tree().process_frame
	check_eq(twin.error_code, NPCBridgeRequest.NOT_SENT, "an id used by a queued request")
	check_eq(fake.sent, [], "nothing goes out before the handshake")
	fake.opened.emit()
	fake.deliver({"type": "welcome", "protocol": 1, "session": "fake", "server": "npcbridge/x"})
	var types := fake.sent.map(func(m: Dictionary) -> Variant: return m.get("type"))
	check_eq(types, ["hello", "npc.define", "ping", "say"], "in order, the definition once")
	check_eq(protocol.pending_count(), 3, "all three wait for their answers")
	fake.deliver({"type": "pong", "id": "q-1"})
	check(ping.is_ok() and not said.done, "answered by id")
	protocol.close()
	check_eq(said.error_code, NPCBridgeRequest.CONNECTION_LOST, "close ends what was sent")


func test_no_server_fails_queued_requests_with_not_connected() -> void:
	var fake := _fake()
	var protocol := NPCBridgeProtocol.new(fake)
	protocol.handshake_timeout_s = 0.2
	protocol.queue_timeout_s = 0.6
	protocol.reconnect_min_s = 0.1
	protocol.reconnect_max_s = 0.1
	var failures: Array[String] = []
	var retries: Array[int] = []
	protocol.connection_failed.connect(func(why: String) -> void: failures.append(why))
	protocol.reconnecting.connect(func(attempt: int, _d: float) -> void: retries.append(attempt))
	protocol.connect_to_server("ws://fake.invalid/")
	var started := Time.get_ticks_msec()
	var queued := protocol.say("blacksmith", "hello?")
	await queued.wait()
	var waited := Time.get_ticks_msec() - started
	check_eq(queued.error_code, NPCBridgeRequest.NOT_CONNECTED, "the queued say fails")
	check(queued.retryable, "not_connected is retryable")
	check(waited >= 500 and waited < 2000, "after queue_timeout_s (%d ms)" % waited)
	check(not failures.is_empty(), "connection_failed was emitted")
	check("handshake timed out" in failures, "it says why: %s" % [failures])
	check(not retries.is_empty() and fake.opens >= 2, "and it keeps trying")
	check_eq(fake.sent, [], "nothing was sent")
	protocol.close()


func test_connect_error_is_reported_at_once() -> void:
	var fake := _fake()
	fake.open_error = ERR_CANT_CONNECT
	var protocol := NPCBridgeProtocol.new(fake)
	var failures: Array[String] = []
	protocol.connection_failed.connect(func(why: String) -> void: failures.append(why))
	check_eq(protocol.connect_to_server("ws://fake.invalid/"), ERR_CANT_CONNECT, "the error")
	check_eq(failures.size(), 1, "connection_failed at once")
	check_eq(protocol.state, NPCBridgeProtocol.State.WAITING_TO_RECONNECT, "a retry is scheduled")
	protocol.auto_reconnect = false
	protocol.close()
	check_eq(protocol.state, NPCBridgeProtocol.State.DISCONNECTED, "closed")


func test_speaker_with_no_server_fails_with_not_connected() -> void:
	var fake := FakeSocket.new()
	var bridge := NPCBridgeConnection.new(fake)
	bridge.queue_timeout_s = 0.3
	bridge.handshake_timeout_s = 5.0
	add_child(bridge)
	var failed_with: Array[String] = []
	var speaker := NPCSpeaker.new()
	speaker.connection = bridge
	speaker.persona = NPCPersona.new()
	speaker.persona.name = "Brom"
	speaker.reply_failed.connect(func(code: String, _m: String) -> void: failed_with.append(code))
	add_child(speaker)
	bridge.connect_to_server("ws://fake.invalid/")
	var reply := await speaker.say("hello?").wait()
	check_eq(reply.error_code, NPCBridgeRequest.NOT_CONNECTED, "the reply fails")
	check_eq(failed_with, [NPCBridgeRequest.NOT_CONNECTED], "reply_failed tells the game")
	bridge.close()


func _fake() -> FakeSocket:
	var fake := FakeSocket.new()
	add_child(fake)
	return fake


## A protocol over [param fake], past the handshake.
func _open_protocol(fake: FakeSocket) -> NPCBridgeProtocol:
	var protocol := NPCBridgeProtocol.new(fake)
	protocol.connect_to_server("ws://fake.invalid/")
	fake.opened.emit()
	fake.deliver({"type": "welcome", "protocol": 1, "session": "fake", "server": "npcbridge/x"})
	fake.sent.clear()
	return protocol


func _run_flow(flow: Dictionary) -> bool:
	var name: String = flow["name"]
	var fake := _fake()
	var protocol := _open_protocol(fake)
	if not check(protocol.is_open(), "%s: the protocol is open" % name):
		return false
	var state := {"at": -1}
	var ends := {}  # request -> index of the frame that ended it
	var handles := {}  # flow key -> NPCBridgeRequest
	var strays: Array[int] = []
	var error_ids := {}  # frame index -> request_id of error_received
	protocol.stray_message_received.connect(
		func(_m: Dictionary) -> void: strays.append(state["at"])
	)
	protocol.error_received.connect(
		func(_c: String, _m: String, id: Variant) -> void: error_ids[state["at"]] = id
	)
	var watch := func(handle: NPCBridgeRequest) -> void:
		handle.finished.connect(func(done: NPCBridgeRequest) -> void: ends[done] = state["at"])
	for key: String in flow["requests"]:
		var handle := protocol.request(flow["requests"][key], {"id": _key_id(key)})
		handles[key] = handle
		watch.call(handle)
		handle.scene_reply_started.connect(
			func(reply: NPCBridgeRequest) -> void:
				handles[str(reply.id)] = reply
				watch.call(reply)
		)
	var frames: Array = flow["frames"]
	for i in frames.size():
		var frame: Dictionary = frames[i].duplicate(true)
		for field: String in ["id", "parent"]:
			if frame.has(field):
				frame[field] = _id_of(frame[field])
		state["at"] = i
		fake.deliver(frame)
	var stray_expected: Array[int] = []
	for index: Variant in flow["stray"]:
		stray_expected.append(int(index))
	check_eq(strays, stray_expected, "%s: stray frames" % name)
	for index: int in error_ids:
		if index in stray_expected:
			check_eq(error_ids[index], null, "%s: stray error %d names no request" % [name, index])
	for key: String in flow["expect"]:
		_check_end(name + ": " + key, handles.get(key), flow["expect"][key], ends)
	# The watchers hold these tables and the requests hold the watchers: break the cycle.
	handles.clear()
	ends.clear()
	fake.queue_free()
	return true


func _check_end(
	what: String, handle: NPCBridgeRequest, expect: Dictionary, ends: Dictionary
) -> void:
	if not check(handle != null, "%s: the client knows the request" % what):
		return
	var kind: String = expect["ends"]
	if kind == "open":
		check(not handle.done, "%s: still open" % what)
		return
	if not check(handle.done, "%s: ended" % what):
		return
	check_eq(ends.get(handle), int(expect["at"]), "%s: ended at frame" % what)
	var deltas := ""
	for message in handle.messages:
		if message.get("type") == "reply.delta":
			deltas += str(message.get("text", ""))
	match kind:
		"reply":
			check(handle.is_ok(), "%s: no error (%s)" % [what, handle.error_code])
			check_eq(handle.response.get("type"), "reply.end", "%s: ends with reply.end" % what)
			check_eq(handle.response.get("finish"), expect["finish"], "%s: finish" % what)
			check_eq(handle.response.get("text"), expect["text"], "%s: text" % what)
			check_eq(deltas, expect["deltas"], "%s: deltas" % what)
		"error":
			check_eq(handle.error_code, expect["code"], "%s: error code" % what)
			if expect.has("text"):
				check_eq(handle.response.get("text"), expect["text"], "%s: partial text" % what)
		"answer":
			check(handle.is_ok(), "%s: no error (%s)" % [what, handle.error_code])
			check_eq(handle.response.get("type"), expect["answer_type"], "%s: answer" % what)
		_:
			check(false, "%s: unknown ending %s" % [what, kind])


## A socket adapter that opens only when told to, records what is sent and delivers what the
## test gives it.
class FakeSocket:
	extends NPCBridgeSocket
	## Decoded messages sent through the adapter, in order.
	var sent: Array[Dictionary] = []
	## The bytes of each message sent, in order.
	var sent_bytes: Array[PackedByteArray] = []
	## How many times the protocol asked to open.
	var opens: int = 0
	## What open() returns.
	var open_error: Error = OK

	func open(_url: String, _max_message_bytes: int) -> Error:
		opens += 1
		return open_error

	func send(data: PackedByteArray) -> Error:
		sent.append(MsgPack.decode(data).value)
		sent_bytes.append(data)
		return OK

	func close(_code: int = 1000, _reason: String = "") -> void:
		pass

	func poll() -> void:
		polled.emit()

	## Hands [param message] to the protocol as one binary WebSocket message.
	func deliver(message: Dictionary) -> void:
		received.emit(MsgPack.encode(message).value, false)

class_name NPCBridgeProtocol
extends RefCounted
## The npcbridge protocol (version 1) over a socket adapter: handshake, requests and their
## answers, queueing while (re)connecting ([NPCBridgeOutbox]), reconnects with backoff, timeouts.
##
## It takes its [NPCBridgeSocket] in the constructor and only talks to it: it sends each message
## as one binary message through [method NPCBridgeSocket.send], decodes what the adapter hands
## on, and runs its timers when the adapter has polled. Which message ends which request is the
## [NPCBridgeRouter]'s job. [NPCBridgeConnection] (the node games use) wraps one of these; tests
## give it a fake adapter. Nothing here raises: failures are values on [NPCBridgeRequest] and
## signals.

## Emitted after the handshake, with the server's [code]welcome[/code] message.
signal connected(welcome: Dictionary)
## Emitted when a connection that was open (or saying hello) closes; [param code] is the
## WebSocket close code (-1 when the connection was not closed cleanly).
signal disconnected(code: int, reason: String)
## Emitted when a connect attempt ends before the handshake completed (no server at the URL,
## refused, handshake timed out, closed by the server): something a game can show.
signal connection_failed(reason: String)
## Emitted when a reconnect is scheduled [param delay_s] seconds from now.
signal reconnecting(attempt: int, delay_s: float)
## Emitted for every message received from the server, after it was routed.
signal message_received(message: Dictionary)
## Emitted for every [code]error[/code] the server sends and for client-side problems (bytes
## that do not decode: code [code]bad_message[/code]). [param request_id] is the id of the
## request the error ended, null when it ended none (a connection-level error, or a refusal of a
## message that reused a live request's id, such as a duplicate [code]say[/code] or a
## [code]cancel[/code]).
signal error_received(code: String, message: String, request_id: Variant)
## Emitted for a server message that belongs to no pending request (see [NPCBridgeRouter]).
signal stray_message_received(message: Dictionary)
## Emitted when [member state] changes.
signal state_changed(state: State)

## Where the connection is.
enum State {
	DISCONNECTED,  ## Not connected and not trying to.
	CONNECTING,  ## WebSocket opening.
	HANDSHAKING,  ## Open; hello sent, waiting for welcome.
	OPEN,  ## Ready: requests are sent at once.
	WAITING_TO_RECONNECT,  ## Dropped; a reconnect is scheduled.
}

## Protocol version spoken.
const PROTOCOL_VERSION := 1
## Version of this addon.
const ADDON_VERSION := "0.1.0"
## Close codes after which reconnecting cannot help (bad token, unsupported protocol).
const FATAL_CLOSE_CODES: Array[int] = [1008, 4001, 4002]
## Error codes after which reconnecting cannot help.
const FATAL_ERROR_CODES: Array[String] = ["unauthorized", "unsupported_protocol"]

## WebSocket URL of the server.
var url: String = NPCBridgeSettings.DEFAULT_URL
## Token sent in [code]hello[/code] (empty: none).
var token: String = ""
## Reconnect automatically after the connection drops.
var auto_reconnect: bool = NPCBridgeSettings.DEFAULT_AUTO_RECONNECT
## First reconnect delay in seconds; it doubles per failed attempt up to [member reconnect_max_s].
var reconnect_min_s: float = NPCBridgeSettings.DEFAULT_RECONNECT_MIN_S
## Longest reconnect delay in seconds.
var reconnect_max_s: float = NPCBridgeSettings.DEFAULT_RECONNECT_MAX_S
## A request sent and with no message from the server for this many seconds fails with
## [constant NPCBridgeRequest.TIMEOUT] (0: never).
var request_timeout_s: float = NPCBridgeSettings.DEFAULT_REQUEST_TIMEOUT_S
## A request made while the connection is not open waits this many seconds for it; then it
## fails with [constant NPCBridgeRequest.NOT_CONNECTED] (0: it waits for ever).
var queue_timeout_s: float = NPCBridgeSettings.DEFAULT_QUEUE_TIMEOUT_S
## Seconds to wait for the WebSocket to open and the server's [code]welcome[/code] before the
## attempt counts as failed.
var handshake_timeout_s: float = NPCBridgeSettings.DEFAULT_HANDSHAKE_TIMEOUT_S
## Largest message accepted from the server, in bytes.
var max_message_bytes: int = NPCBridgeSettings.DEFAULT_MAX_MESSAGE_BYTES

## Current state.
var state: State = State.DISCONNECTED
## Session id from the last [code]welcome[/code] (empty before the first handshake).
var session: String = ""
## The last [code]welcome[/code] message (models, features, limits).
var welcome: Dictionary = {}
## How many times the connection has completed a handshake (1 after the first connect).
var connect_count: int = 0
## The pending requests, and which server message ends each.
var router: NPCBridgeRouter = NPCBridgeRouter.new()
## What this connection knows of NPC state, and its change signals.
var npc_states: NPCBridgeStates = NPCBridgeStates.new()

var _adapter: NPCBridgeSocket = null
var _next_id: int = 1
var _outbox: NPCBridgeOutbox = NPCBridgeOutbox.new()  # made before the handshake, sent after it
var _definitions: Dictionary = {}  # npc id -> persona map, re-sent after a reconnect
var _attempt: int = 0
var _reconnect_at_msec: int = 0
var _attempt_started_msec: int = 0
var _wanted: bool = false
var _rng: RandomNumberGenerator = RandomNumberGenerator.new()


func _init(adapter: NPCBridgeSocket) -> void:
	_rng.randomize()
	_adapter = adapter
	_adapter.opened.connect(_on_opened)
	_adapter.received.connect(_on_received)
	_adapter.closed.connect(_on_closed)
	_adapter.polled.connect(_on_polled)


## Opens the connection (to [param server_url] / with [param server_token] when given).
## Returns [constant OK] or the adapter's error.
func connect_to_server(server_url: String = "", server_token: String = "") -> Error:
	if not server_url.is_empty():
		url = server_url
	if not server_token.is_empty():
		token = server_token
	_wanted = true
	_attempt = 0
	return _open()


## Closes the connection and stops reconnecting. Requests in flight fail with
## [constant NPCBridgeRequest.CONNECTION_LOST]; queued ones with
## [constant NPCBridgeRequest.NOT_SENT].
func close(code: int = 1000, reason: String = "") -> void:
	_wanted = false
	_adapter.close(code, reason)
	_drop(code, reason, false)
	_outbox.fail_all(NPCBridgeRequest.NOT_SENT, "the connection was closed")


## True when the handshake is done and requests go out at once.
func is_open() -> bool:
	return state == State.OPEN


## Sends a request of [param type] with [param fields] and returns its handle. The protocol
## numbers requests 1, 2, 3 ... unless [param fields] has an [code]id[/code] (an int, or a
## String of at most 128 bytes, not in use). While (re)connecting the request waits in a queue
## (at most [member queue_timeout_s]); when the connection is closed for good it fails at once.
func request(type: String, fields: Dictionary = {}) -> NPCBridgeRequest:
	var handle := _make_request(type, fields)
	var problem := _id_problem(fields.get("id"))
	if not problem.is_empty():
		handle.fail.call_deferred(NPCBridgeRequest.NOT_SENT, problem)
	elif state == State.OPEN:
		_send_request(handle)
	elif _wanted:
		_outbox.add(handle)
	else:
		handle.fail.call_deferred(NPCBridgeRequest.NOT_SENT, "not connected")
	return handle


## Sends one message that expects no answer (e.g. [code]cancel[/code]). Returns an error when
## the connection is not open or the message cannot be encoded.
func send_message(message: Dictionary) -> Error:
	if state != State.OPEN and state != State.HANDSHAKING:
		return ERR_CONNECTION_ERROR
	var packed := NPCBridgeMsgPack.encode(message)
	if not packed.is_ok():
		return ERR_INVALID_DATA
	return _adapter.send(packed.value)


## Asks [param npc] to answer [param text] ([code]say[/code]); the reply streams in as messages
## on the returned request. [param fields] may add [code]context[/code], [code]urgency[/code],
## [code]max_tokens[/code], [code]temperature[/code], [code]stream[/code].
func say(
	npc: String, text: String, player: String = "player", fields: Dictionary = {}
) -> NPCBridgeRequest:
	var message := fields.duplicate(true)
	message["npc"] = npc
	message["player"] = player
	message["text"] = text
	return request("say", message)


## Cancels the request with [param request_id] (see [method NPCBridgeRequest.cancel]);
## [param barge_in]: the player spoke over the NPC.
func cancel(request_id: Variant, barge_in: bool = false) -> Error:
	if barge_in:
		return send_message({"type": "cancel", "id": request_id, "barge_in": true})
	return send_message({"type": "cancel", "id": request_id})


## Reads or changes an NPC's state ([code]npc.state[/code], docs/state.md): [param op] is
## [code]get[/code], [code]set[/code], [code]nudge[/code] ([param fields]
## [code]values[/code]), [code]watch[/code] ([code]watch[/code]: thresholds) or
## [code]unwatch[/code] ([code]names[/code]). Empty [param player]: the NPC's own mood only. The
## answer is the [code]state[/code] message; [member npc_states] follows it.
func npc_state(
	npc: String, player: String = "", op: String = "get", fields: Dictionary = {}
) -> NPCBridgeRequest:
	var message := fields.duplicate(true)
	message["npc"] = npc
	message["op"] = op
	if not player.is_empty():
		message["player"] = player
	return request("npc.state", message)


## Tells NPCs what happened ([code]world.event[/code]): [param fields] names [code]npc[/code],
## [code]npcs[/code] or [code]scene[/code], and may add [code]player[/code],
## [code]witnesses[/code], [code]importance[/code], [code]effects[/code], [code]react[/code].
## Each reaction arrives like a scene reply ([signal NPCBridgeRequest.scene_reply_started]); the
## request ends with the [code]ok[/code] (npcs, reactions).
func world_event(text: String, fields: Dictionary = {}) -> NPCBridgeRequest:
	var message := fields.duplicate(true)
	message["text"] = text
	return request("world.event", message)


## Defines (or redefines) an NPC for this connection ([code]npc.define[/code]). The definition is
## remembered and sent again after every reconnect.
func define_npc(npc: String, persona: Dictionary) -> NPCBridgeRequest:
	_definitions[npc] = persona.duplicate(true)
	return request("npc.define", {"npc": npc, "persona": persona})


## True when [param npc] was defined with [method define_npc] on this connection.
func is_defined(npc: String) -> bool:
	return _definitions.has(npc)


## Number of requests sent and not yet answered in full.
func pending_count() -> int:
	return router.size()


func _open() -> Error:
	if state != State.DISCONNECTED and state != State.WAITING_TO_RECONNECT:
		# A new connection (e.g. to another URL): what was sent on the old one gets no answer.
		_adapter.close()
		_fail_pending("the connection was replaced")
	_attempt_started_msec = Time.get_ticks_msec()
	var error := _adapter.open(url, max_message_bytes)
	if error != OK:
		_set_state(State.CONNECTING)
		_drop(-1, "cannot connect to %s: %s" % [url, error_string(error)], true)
		return error
	_set_state(State.CONNECTING)
	return OK


func _on_opened() -> void:
	if state != State.CONNECTING:
		return
	_set_state(State.HANDSHAKING)
	var version: Dictionary = Engine.get_version_info()
	var hello := {
		"type": "hello",
		"protocol": PROTOCOL_VERSION,
		"client":
		"godot/%d.%d npcbridge-gd/%s" % [version["major"], version["minor"], ADDON_VERSION],
	}
	if not token.is_empty():
		hello["token"] = token
	send_message(hello)


func _on_closed(code: int, reason: String) -> void:
	_drop(code, reason, true)


func _on_received(data: PackedByteArray, is_text: bool) -> void:
	if is_text:
		error_received.emit("bad_message", "the server sent a text frame", null)
		return
	var decoded := NPCBridgeMsgPack.decode(data)
	if not decoded.is_ok():
		error_received.emit("bad_message", "undecodable message: " + decoded.error, null)
		return
	if not decoded.value is Dictionary or not decoded.value.get("type") is String:
		error_received.emit("bad_message", "a message must be a map with a string type", null)
		return
	var message: Dictionary = decoded.value
	var kind: String = message["type"]
	if state == State.HANDSHAKING:
		if kind == "welcome":
			_on_welcome(message)
			message_received.emit(message)
			return
		if kind == "error" and message.get("id") == null:
			if str(message.get("code", "")) in FATAL_ERROR_CODES:
				_wanted = false
	if kind == "state" or kind == "reply.end":
		npc_states.seen(message, _player_of(message.get("id")))
	var route := router.route(message)
	if kind == "error":
		var ended: Variant = route.request.id if route.final else null
		error_received.emit(str(message.get("code", "")), str(message.get("message", "")), ended)
	if route.request == null:
		stray_message_received.emit(message)
	else:
		route.request.receive(message, route.final)
	message_received.emit(message)


# The player of the pending request with this id (a say's), else "".
func _player_of(request_id: Variant) -> String:
	for pending in router.requests():
		if typeof(pending.id) == typeof(request_id) and pending.id == request_id:
			var player: Variant = pending.message.get("player")
			return player if player is String else ""
	return ""


func _on_welcome(message: Dictionary) -> void:
	welcome = message
	session = str(message.get("session", ""))
	_attempt = 0
	connect_count += 1
	_set_state(State.OPEN)
	# Definitions first (also those of NPCs defined before a reconnect), then queued requests.
	for npc: String in _definitions:
		if not _outbox.defines(npc):
			_send_request(_make_request("npc.define", {"npc": npc, "persona": _definitions[npc]}))
	for queued in _outbox.take_all():
		_send_request(queued)
	connected.emit(message)


func _make_request(type: String, fields: Dictionary) -> NPCBridgeRequest:
	var given: Variant = fields.get("id")
	var request_id: Variant = given
	if given == null:
		while router.has_id(_next_id):
			_next_id += 1
		request_id = _next_id
		_next_id += 1
	var handle := NPCBridgeRequest.new(type, request_id)
	handle.protocol_ref = weakref(self)
	handle.message = fields.duplicate(true)
	handle.message["type"] = type
	handle.message["id"] = request_id
	# Connected first, so the request has left the pending table when others hear it finished.
	# (A method, not a lambda: a lambda would hold this protocol and make a reference cycle.)
	handle.finished.connect(_forget)
	return handle


func _forget(handle: NPCBridgeRequest) -> void:
	router.remove(handle)
	_outbox.remove(handle)


## Why [param given] cannot be a request id (empty: it can, or none was given).
func _id_problem(given: Variant) -> String:
	if given == null:
		return ""
	if not (given is String or given is int):
		return "id: must be a String or an int"
	if given is String and (given as String).to_utf8_buffer().size() > 128:
		return "id: at most 128 bytes"
	if router.has_id(given) or _outbox.has_id(given):
		return "id: already in use"
	return ""


func _send_request(handle: NPCBridgeRequest) -> void:
	var packed := NPCBridgeMsgPack.encode(handle.message)
	if not packed.is_ok():
		handle.fail(NPCBridgeRequest.NOT_SENT, "cannot encode the message: " + packed.error)
		return
	var error := _adapter.send(packed.value)
	if error != OK:
		handle.fail(NPCBridgeRequest.NOT_SENT, "send failed: " + error_string(error))
		return
	handle.last_activity_msec = Time.get_ticks_msec()
	router.add(handle)


func _drop(code: int, reason: String, may_reconnect: bool) -> void:
	var was := state
	_fail_pending("the connection closed (%d)" % code)
	if code in FATAL_CLOSE_CODES:
		_wanted = false
	if was == State.OPEN or was == State.HANDSHAKING:
		disconnected.emit(code, reason)
	if was == State.CONNECTING:
		connection_failed.emit(
			reason if not reason.is_empty() else "cannot reach %s (close code %d)" % [url, code]
		)
	elif was == State.HANDSHAKING:
		connection_failed.emit(
			reason if not reason.is_empty() else "closed before welcome (close code %d)" % code
		)
	if may_reconnect and _wanted and auto_reconnect:
		_schedule_reconnect()
	else:
		_set_state(State.DISCONNECTED)
		if not _wanted:
			_outbox.fail_all(NPCBridgeRequest.NOT_SENT, "not connected")


func _fail_pending(why: String) -> void:
	for handle in router.take_all():
		handle.fail(NPCBridgeRequest.CONNECTION_LOST, why, true)


func _schedule_reconnect() -> void:
	if not (_wanted and auto_reconnect):
		_set_state(State.DISCONNECTED)
		return
	_attempt += 1
	var base := minf(reconnect_max_s, reconnect_min_s * pow(2.0, _attempt - 1))
	var delay := base * _rng.randf_range(0.5, 1.0)
	_reconnect_at_msec = Time.get_ticks_msec() + int(delay * 1000.0)
	_set_state(State.WAITING_TO_RECONNECT)
	reconnecting.emit(_attempt, delay)


func _on_polled() -> void:
	var now := Time.get_ticks_msec()
	if state == State.CONNECTING or state == State.HANDSHAKING:
		if now - _attempt_started_msec > int(handshake_timeout_s * 1000.0):
			_adapter.close()
			_drop(-1, "handshake timed out", true)
	if state == State.WAITING_TO_RECONNECT and now >= _reconnect_at_msec:
		_open()
	_check_timeouts(now)


func _check_timeouts(now: int) -> void:
	if request_timeout_s > 0.0 and router.size() > 0:
		var limit := now - int(request_timeout_s * 1000.0)
		for handle in router.requests():
			if handle.last_activity_msec < limit:
				router.remove(handle)
				var why := "no answer within %.0f s" % request_timeout_s
				handle.fail(NPCBridgeRequest.TIMEOUT, why, true)
	_outbox.expire(now, queue_timeout_s)


func _set_state(new_state: State) -> void:
	if state != new_state:
		state = new_state
		state_changed.emit(new_state)

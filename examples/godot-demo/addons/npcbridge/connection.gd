class_name NPCBridgeConnection
extends Node
## A connection to an npcbridge server: WebSocket + msgpack, protocol version 1.
##
## Add it to the tree (the [code]NPCBridge[/code] autoload is one) and call
## [method connect_to_server]. It polls its [WebSocketPeer] every frame, sends each message as one
## binary WebSocket message, performs the [code]hello[/code]/[code]welcome[/code] handshake,
## reconnects with exponential backoff when the connection drops, and matches the server's
## answers to requests by id. Requests made while (re)connecting are queued and sent after the
## handshake. Nothing here raises: failures are values on [NPCBridgeRequest] and signals.
## [codeblock]
## var bridge := NPCBridgeConnection.new()
## add_child(bridge)
## bridge.connect_to_server("ws://127.0.0.1:8765/")
## var quest := bridge.request("quest.generate", {"theme": "wolves", "difficulty": "easy"})
## await quest.wait()
## [/codeblock]

## Emitted after the handshake, with the server's [code]welcome[/code] message.
signal connected(welcome: Dictionary)
## Emitted when a connection that was open (or saying hello) closes; [param code] is the
## WebSocket close code (-1 when the connection was not closed cleanly). A connect attempt that
## fails before the WebSocket opens emits [signal reconnecting] only.
signal disconnected(code: int, reason: String)
## Emitted when a reconnect is scheduled [param delay_s] seconds from now.
signal reconnecting(attempt: int, delay_s: float)
## Emitted for every message received from the server, after it was matched to its request.
signal message_received(message: Dictionary)
## Emitted for every [code]error[/code] the server sends and for client-side problems (bytes
## that do not decode: code [code]bad_message[/code]). [param request_id] is null when the error
## belongs to no request.
signal error_received(code: String, message: String, request_id: Variant)
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
@export var url: String = NPCBridgeSettings.DEFAULT_URL
## Token sent in [code]hello[/code] (empty: none).
@export var token: String = ""
## Reconnect automatically after the connection drops.
@export var auto_reconnect: bool = true
## First reconnect delay in seconds; it doubles per failed attempt up to [member reconnect_max_s].
@export var reconnect_min_s: float = 0.5
## Longest reconnect delay in seconds.
@export var reconnect_max_s: float = 30.0
## A request with no message from the server for this many seconds fails with
## [constant NPCBridgeRequest.TIMEOUT] (0: never).
@export var request_timeout_s: float = 60.0
## Seconds to wait for the WebSocket to open and the server's [code]welcome[/code] before the
## attempt counts as failed.
@export var handshake_timeout_s: float = 15.0
## Largest message accepted from the server, in bytes.
@export var max_message_bytes: int = 1 << 20

## Current state.
var state: State = State.DISCONNECTED
## Session id from the last [code]welcome[/code] (empty before the first handshake).
var session: String = ""
## The last [code]welcome[/code] message (models, features, limits).
var welcome: Dictionary = {}
## How many times the connection has completed a handshake (1 after the first connect).
var connect_count: int = 0

var _socket: WebSocketPeer = null
var _next_id: int = 1
var _pending: Dictionary = {}  # id -> NPCBridgeRequest, sent and waiting for answers
var _outbox: Array[NPCBridgeRequest] = []  # made before the handshake, sent after it
var _definitions: Dictionary = {}  # npc id -> persona map, re-sent after a reconnect
var _attempt: int = 0
var _reconnect_at_msec: int = 0
var _attempt_started_msec: int = 0
var _wanted: bool = false
var _rng: RandomNumberGenerator = RandomNumberGenerator.new()


func _init() -> void:
	_rng.randomize()


func _process(_delta: float) -> void:
	poll()


func _exit_tree() -> void:
	close()


## Opens the connection (to [param server_url] / with [param server_token] when given).
## Returns [constant OK] or the error from [method WebSocketPeer.connect_to_url].
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
	if _socket != null:
		_socket.close(code, reason)
	_drop(code, reason, false)
	for queued in _outbox:
		queued.fail(NPCBridgeRequest.NOT_SENT, "the connection was closed")
	_outbox.clear()


## True when the handshake is done and requests go out at once.
func is_open() -> bool:
	return state == State.OPEN


## Sends a request of [param type] with [param fields] (an id is added) and returns its handle.
## Works for every message type, present and future ([code]quest.generate[/code],
## [code]barks.generate[/code], [code]memory.*[/code], [code]x.*[/code] ...). While connecting
## the request waits in a queue; when the connection is closed for good it fails at once.
func request(type: String, fields: Dictionary = {}) -> NPCBridgeRequest:
	var handle := _make_request(type, fields)
	if state == State.OPEN:
		_send_request(handle)
	elif _wanted:
		_outbox.append(handle)
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
	return _socket.send(packed.value, WebSocketPeer.WRITE_MODE_BINARY)


## Defines (or redefines) an NPC for this connection ([code]npc.define[/code]). The definition is
## remembered and sent again after every reconnect.
func define_npc(npc: String, persona: Dictionary) -> NPCBridgeRequest:
	_definitions[npc] = persona.duplicate(true)
	return request("npc.define", {"npc": npc, "persona": persona})


## True when [param npc] was defined with [method define_npc] on this connection.
func is_defined(npc: String) -> bool:
	return _definitions.has(npc)


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


## Cancels the request with [param request_id] (see [method NPCBridgeRequest.cancel]).
func cancel(request_id: Variant) -> Error:
	return send_message({"type": "cancel", "id": request_id})


## Number of requests sent and not yet answered in full.
func pending_count() -> int:
	return _pending.size()


## Polls the socket: reads messages, follows state changes, times out requests and reconnects.
## Called every frame by [method Node._process]; call it yourself if processing is disabled.
func poll() -> void:
	if _socket != null:
		_socket.poll()
		if _socket.get_ready_state() == WebSocketPeer.STATE_OPEN and state == State.CONNECTING:
			_send_hello()
		# Read what arrived even when the socket closed in the same poll: a server's last words
		# (e.g. `error` unauthorized before close 4001) come right before its close.
		while _socket != null and _socket.get_available_packet_count() > 0:
			var packet := _socket.get_packet()
			if _socket.was_string_packet():
				error_received.emit("bad_message", "the server sent a text frame", null)
				continue
			_receive(packet)
		if _socket != null and _socket.get_ready_state() == WebSocketPeer.STATE_CLOSED:
			_drop(_socket.get_close_code(), _socket.get_close_reason(), true)
	var now := Time.get_ticks_msec()
	if state == State.CONNECTING or state == State.HANDSHAKING:
		if now - _attempt_started_msec > int(handshake_timeout_s * 1000.0):
			_socket.close()
			_drop(-1, "handshake timed out", true)
	if state == State.WAITING_TO_RECONNECT and now >= _reconnect_at_msec:
		_open()
	_check_timeouts()


func _open() -> Error:
	if _socket != null:
		# A new connection (e.g. to another URL): what was sent on the old one gets no answer.
		_socket.close()
		_fail_pending("the connection was replaced")
	_attempt_started_msec = Time.get_ticks_msec()
	_socket = WebSocketPeer.new()
	_socket.inbound_buffer_size = max_message_bytes
	_socket.outbound_buffer_size = max_message_bytes
	_socket.max_queued_packets = 4096
	var error := _socket.connect_to_url(url)
	if error != OK:
		_socket = null
		_schedule_reconnect()
		return error
	_set_state(State.CONNECTING)
	return OK


func _send_hello() -> void:
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


func _receive(packet: PackedByteArray) -> void:
	var decoded := NPCBridgeMsgPack.decode(packet)
	if not decoded.is_ok():
		error_received.emit("bad_message", "undecodable message: " + decoded.error, null)
		return
	if not decoded.value is Dictionary or not decoded.value.get("type") is String:
		error_received.emit("bad_message", "a message must be a map with a string type", null)
		return
	var message: Dictionary = decoded.value
	var kind: String = message["type"]
	var request_id: Variant = message.get("id")
	if state == State.HANDSHAKING:
		if kind == "welcome":
			_on_welcome(message)
			message_received.emit(message)
			return
		if kind == "error" and request_id == null:
			var code := str(message.get("code", ""))
			if code in FATAL_ERROR_CODES:
				_wanted = false
	if kind == "error":
		error_received.emit(
			str(message.get("code", "")), str(message.get("message", "")), request_id
		)
	if request_id != null and _pending.has(request_id):
		var handle: NPCBridgeRequest = _pending[request_id]
		handle.handle_message(message)
	message_received.emit(message)


func _on_welcome(message: Dictionary) -> void:
	welcome = message
	session = str(message.get("session", ""))
	_attempt = 0
	connect_count += 1
	_set_state(State.OPEN)
	# Definitions first (also those of NPCs defined before a reconnect), then queued requests.
	var queued_defines := {}
	for queued in _outbox:
		if queued.type == "npc.define":
			queued_defines[queued.message.get("npc")] = true
	for npc: String in _definitions:
		if not queued_defines.has(npc):
			_send_request(_make_request("npc.define", {"npc": npc, "persona": _definitions[npc]}))
	var queued_requests := _outbox.duplicate()
	_outbox.clear()
	for queued: NPCBridgeRequest in queued_requests:
		_send_request(queued)
	connected.emit(message)


func _make_request(type: String, fields: Dictionary) -> NPCBridgeRequest:
	var handle := NPCBridgeRequest.new(type, _next_id)
	_next_id += 1
	handle.connection_ref = weakref(self)
	handle.message = fields.duplicate(true)
	handle.message["type"] = type
	handle.message["id"] = handle.id
	# Connected first, so the request has left the pending table when others hear it finished.
	handle.finished.connect(_forget)
	return handle


func _forget(handle: NPCBridgeRequest) -> void:
	if _pending.get(handle.id) == handle:
		_pending.erase(handle.id)


func _send_request(handle: NPCBridgeRequest) -> void:
	var packed := NPCBridgeMsgPack.encode(handle.message)
	if not packed.is_ok():
		handle.fail(NPCBridgeRequest.NOT_SENT, "cannot encode the message: " + packed.error)
		return
	var error := _socket.send(packed.value, WebSocketPeer.WRITE_MODE_BINARY)
	if error != OK:
		handle.fail(NPCBridgeRequest.NOT_SENT, "send failed: " + error_string(error))
		return
	handle.last_activity_msec = Time.get_ticks_msec()
	_pending[handle.id] = handle


func _drop(code: int, reason: String, may_reconnect: bool) -> void:
	var was := state
	_socket = null
	_fail_pending("the connection closed (%d)" % code)
	if code in FATAL_CLOSE_CODES:
		_wanted = false
	if was == State.OPEN or was == State.HANDSHAKING:
		disconnected.emit(code, reason)
	if may_reconnect and _wanted and auto_reconnect:
		_schedule_reconnect()
	else:
		_set_state(State.DISCONNECTED)
		if not _wanted:
			for queued in _outbox:
				queued.fail(NPCBridgeRequest.NOT_SENT, "not connected")
			_outbox.clear()


func _fail_pending(why: String) -> void:
	var lost := _pending.values()
	_pending.clear()
	for handle: NPCBridgeRequest in lost:
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


func _check_timeouts() -> void:
	if request_timeout_s <= 0.0 or _pending.is_empty():
		return
	var limit := Time.get_ticks_msec() - int(request_timeout_s * 1000.0)
	for request_id: Variant in _pending.keys():
		var handle: NPCBridgeRequest = _pending[request_id]
		if handle.last_activity_msec < limit:
			_pending.erase(request_id)
			handle.fail(
				NPCBridgeRequest.TIMEOUT, "no answer within %.0f s" % request_timeout_s, true
			)


func _set_state(new_state: State) -> void:
	if state != new_state:
		state = new_state
		state_changed.emit(new_state)

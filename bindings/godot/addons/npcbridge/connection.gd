class_name NPCBridgeConnection
extends Node
## A connection to an npcbridge server: WebSocket + msgpack, protocol version 1. The
## [code]NPCBridge[/code] autoload is one.
##
## Add it to the tree and call [method connect_to_server]. It is made of two parts: an
## [NPCBridgeSocket] child (the socket adapter: polls its [WebSocketPeer] every frame and hands
## on the bytes) and an [NPCBridgeProtocol] (handshake, requests matched to their answers,
## queueing while (re)connecting, reconnects with exponential backoff, timeouts). This node is a
## façade on purpose: a game gets the settings as inspector properties and the signals on a Node
## it can connect in the editor, while the protocol stays a [RefCounted] that tests drive with a
## fake socket; so every setting, signal and method here only forwards to the protocol (the
## settings' defaults are in [NPCBridgeSettings]). Nothing here raises: failures are values on
## [NPCBridgeRequest] and signals.
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
## WebSocket close code (-1 when the connection was not closed cleanly).
signal disconnected(code: int, reason: String)
## Emitted when a connect attempt ends before the handshake completed: no server at the URL,
## refused, handshake timed out, closed by the server. Show it to the player ("cannot reach the
## NPC server"); a reconnect follows unless the failure is fatal or reconnecting is off.
signal connection_failed(reason: String)
## Emitted when a reconnect is scheduled [param delay_s] seconds from now.
signal reconnecting(attempt: int, delay_s: float)
## Emitted for every message received from the server, after it was routed to its request.
signal message_received(message: Dictionary)
## Emitted for every [code]error[/code] the server sends and for client-side problems (bytes
## that do not decode: code [code]bad_message[/code]). [param request_id] is the id of the
## request the error ended, null when it ended none (a connection-level error, or a refusal of a
## message that reused a live request's id, e.g. a duplicate [code]say[/code] or a
## [code]cancel[/code]).
signal error_received(code: String, message: String, request_id: Variant)
## Emitted for a server message that belongs to no pending request.
signal stray_message_received(message: Dictionary)
## Emitted when [member state] changes.
signal state_changed(state: NPCBridgeProtocol.State)

# gdlint: disable=constant-name
## Where the connection is (see [enum NPCBridgeProtocol.State]).
const State := NPCBridgeProtocol.State
# gdlint: enable=constant-name
## Protocol version spoken.
const PROTOCOL_VERSION := NPCBridgeProtocol.PROTOCOL_VERSION
## Version of this addon.
const ADDON_VERSION := NPCBridgeProtocol.ADDON_VERSION

## WebSocket URL of the server.
@export var url: String = NPCBridgeSettings.DEFAULT_URL:
	get:
		return protocol.url
	set(value):
		protocol.url = value
## Token sent in [code]hello[/code] (empty: none).
@export var token: String = "":
	get:
		return protocol.token
	set(value):
		protocol.token = value
## Reconnect automatically after the connection drops.
@export var auto_reconnect: bool = NPCBridgeSettings.DEFAULT_AUTO_RECONNECT:
	get:
		return protocol.auto_reconnect
	set(value):
		protocol.auto_reconnect = value
## First reconnect delay in seconds; it doubles per failed attempt up to [member reconnect_max_s].
@export var reconnect_min_s: float = NPCBridgeSettings.DEFAULT_RECONNECT_MIN_S:
	get:
		return protocol.reconnect_min_s
	set(value):
		protocol.reconnect_min_s = value
## Longest reconnect delay in seconds.
@export var reconnect_max_s: float = NPCBridgeSettings.DEFAULT_RECONNECT_MAX_S:
	get:
		return protocol.reconnect_max_s
	set(value):
		protocol.reconnect_max_s = value
## A request sent and with no message from the server for this many seconds fails with
## [constant NPCBridgeRequest.TIMEOUT] (0: never).
@export var request_timeout_s: float = NPCBridgeSettings.DEFAULT_REQUEST_TIMEOUT_S:
	get:
		return protocol.request_timeout_s
	set(value):
		protocol.request_timeout_s = value
## A request made while the connection is not open (the server cannot be reached, or a
## reconnect is under way) waits this many seconds for it; then it fails with
## [constant NPCBridgeRequest.NOT_CONNECTED] (0: it waits for ever).
@export var queue_timeout_s: float = NPCBridgeSettings.DEFAULT_QUEUE_TIMEOUT_S:
	get:
		return protocol.queue_timeout_s
	set(value):
		protocol.queue_timeout_s = value
## Seconds to wait for the WebSocket to open and the server's [code]welcome[/code] before the
## attempt counts as failed ([signal connection_failed]).
@export var handshake_timeout_s: float = NPCBridgeSettings.DEFAULT_HANDSHAKE_TIMEOUT_S:
	get:
		return protocol.handshake_timeout_s
	set(value):
		protocol.handshake_timeout_s = value
## Largest message accepted from the server, in bytes.
@export var max_message_bytes: int = NPCBridgeSettings.DEFAULT_MAX_MESSAGE_BYTES:
	get:
		return protocol.max_message_bytes
	set(value):
		protocol.max_message_bytes = value

## Current state.
var state: NPCBridgeProtocol.State:
	get:
		return protocol.state
## Session id from the last [code]welcome[/code] (empty before the first handshake).
var session: String:
	get:
		return protocol.session
## The last [code]welcome[/code] message (models, features, limits).
var welcome: Dictionary:
	get:
		return protocol.welcome
## How many times the connection has completed a handshake (1 after the first connect).
var connect_count: int:
	get:
		return protocol.connect_count
## What this connection knows of NPC state, and its change signals ([NPCBridgeStates]).
var npc_states: NPCBridgeStates:
	get:
		return protocol.npc_states
## The socket adapter (a child of this node).
var socket: NPCBridgeSocket = null
## The protocol object that does the work.
var protocol: NPCBridgeProtocol = null


## Makes the connection over [param adapter] (default: a new [NPCBridgeSocket]), which becomes
## a child of this node when it has no parent.
func _init(adapter: NPCBridgeSocket = null) -> void:
	socket = adapter if adapter != null else NPCBridgeSocket.new()
	if socket.get_parent() == null:
		socket.name = "Socket"
		add_child(socket)
	protocol = NPCBridgeProtocol.new(socket)
	protocol.connected.connect(connected.emit)
	protocol.disconnected.connect(disconnected.emit)
	protocol.connection_failed.connect(connection_failed.emit)
	protocol.reconnecting.connect(reconnecting.emit)
	protocol.message_received.connect(message_received.emit)
	protocol.error_received.connect(error_received.emit)
	protocol.stray_message_received.connect(stray_message_received.emit)
	protocol.state_changed.connect(state_changed.emit)


func _exit_tree() -> void:
	close()


## Opens the connection (to [param server_url] / with [param server_token] when given).
## Returns [constant OK] or the error from [method WebSocketPeer.connect_to_url].
func connect_to_server(server_url: String = "", server_token: String = "") -> Error:
	return protocol.connect_to_server(server_url, server_token)


## Closes the connection and stops reconnecting. Requests in flight fail with
## [constant NPCBridgeRequest.CONNECTION_LOST]; queued ones with
## [constant NPCBridgeRequest.NOT_SENT].
func close(code: int = 1000, reason: String = "") -> void:
	protocol.close(code, reason)


## True when the handshake is done and requests go out at once.
func is_open() -> bool:
	return protocol.is_open()


## Sends a request of [param type] with [param fields] and returns its handle (see
## [method NPCBridgeProtocol.request]). Works for every message type, present and future
## ([code]quest.generate[/code], [code]barks.generate[/code], [code]memory.*[/code],
## [code]x.*[/code] ...). While connecting the request waits in a queue for at most
## [member queue_timeout_s]; when the connection is closed for good it fails at once.
func request(type: String, fields: Dictionary = {}) -> NPCBridgeRequest:
	return protocol.request(type, fields)


## Sends one message that expects no answer (e.g. [code]cancel[/code]). Returns an error when
## the connection is not open or the message cannot be encoded.
func send_message(message: Dictionary) -> Error:
	return protocol.send_message(message)


## Defines (or redefines) an NPC for this connection ([code]npc.define[/code]). The definition is
## remembered and sent again after every reconnect.
func define_npc(npc: String, persona: Dictionary) -> NPCBridgeRequest:
	return protocol.define_npc(npc, persona)


## True when [param npc] was defined with [method define_npc] on this connection.
func is_defined(npc: String) -> bool:
	return protocol.is_defined(npc)


## Asks [param npc] to answer [param text] ([code]say[/code]); the reply streams in as messages
## on the returned request. [param fields] may add [code]context[/code], [code]urgency[/code],
## [code]max_tokens[/code], [code]temperature[/code], [code]stream[/code].
func say(
	npc: String, text: String, player: String = "player", fields: Dictionary = {}
) -> NPCBridgeRequest:
	return protocol.say(npc, text, player, fields)


## Cancels the request with [param request_id] (see [method NPCBridgeRequest.cancel]);
## [param barge_in]: the player spoke over the NPC, the reply keeps what was heard.
func cancel(request_id: Variant, barge_in: bool = false) -> Error:
	return protocol.cancel(request_id, barge_in)


## Sends the player's whole utterance [param audio] (a WAV file, or raw PCM16 when
## [param fields] says [code]"format": "pcm16"[/code] with its [code]sample_rate[/code]) to
## [param npc] ([code]speech[/code]). The [code]transcript[/code] and then the reply stream in
## on the returned request, as for [method say]. The message must fit the server's
## [code]max_message_bytes[/code]; longer speech goes through [method speech_start].
func speech(
	npc: String, audio: PackedByteArray, player: String = "player", fields: Dictionary = {}
) -> NPCBridgeRequest:
	var message := fields.duplicate(true)
	if not message.has("format"):
		message["format"] = (
			"wav" if audio.slice(0, 4).get_string_from_ascii() == "RIFF" else "pcm16"
		)
	message = NPCSpeechStream.audio_fields(npc, player, message)
	message["audio"] = audio
	return protocol.request("speech", message)


## Opens a chunked utterance (push-to-talk) of [param player] to [param npc]; see
## [NPCSpeechStream].
func speech_start(
	npc: String, player: String = "player", fields: Dictionary = {}
) -> NPCSpeechStream:
	return NPCSpeechStream.open(protocol, npc, player, fields)


## Reads or changes an NPC's state (see [method NPCBridgeProtocol.npc_state]).
func npc_state(
	npc: String, player: String = "", op: String = "get", fields: Dictionary = {}
) -> NPCBridgeRequest:
	return protocol.npc_state(npc, player, op, fields)


## Tells NPCs what happened (see [method NPCBridgeProtocol.world_event]).
func world_event(text: String, fields: Dictionary = {}) -> NPCBridgeRequest:
	return protocol.world_event(text, fields)


## Number of requests sent and not yet answered in full.
func pending_count() -> int:
	return protocol.pending_count()


## Polls the socket: reads messages, follows state changes, times out requests and reconnects.
## Called every frame by the socket's [method Node._process]; call it yourself if processing is
## disabled.
func poll() -> void:
	socket.poll()

class_name NPCBridgeRequest
extends RefCounted
## One request sent to the npcbridge server and everything the server answered to it.
##
## [NPCBridgeProtocol] creates these and hands each the server's messages with its [member id]
## ([NPCBridgeRouter] decides which message ends it). A request is [member done] after its
## final answer ([code]ok[/code], [code]reply.end[/code], [code]quest[/code],
## [code]memory[/code], [code]scene.done[/code], [code]error[/code] ...) or after a client-side
## failure (not connected, connection lost, timeout). Failures are values: check
## [method is_ok] and [member error_code].
## [codeblock]
## var request := NPCBridge.request("memory.query", {"npc": "blacksmith", "player": "p1"})
## await request.wait()
## if request.is_ok():
##     print(request.response["items"])
## else:
##     print(request.error_code, ": ", request.error_message)
## [/codeblock]

## Emitted for every server message that carries this request's id, in order.
signal message_received(message: Dictionary)
## Emitted once, when the request is done (succeeded or failed).
signal finished(request: NPCBridgeRequest)
## Emitted when an NPC of this [code]scene.say[/code]'s scene starts a reply: [param reply] is
## a request of its own (type [constant NPCBridgeRouter.SCENE_REPLY], id
## [code]"<this id>/<n>"[/code]) that streams and ends like a [code]say[/code].
signal scene_reply_started(reply: NPCBridgeRequest)

## Client-side error code: the connection closed before the answer came.
const CONNECTION_LOST := "connection_lost"
## Client-side error code: the request could not be sent (the connection is closed, encoding
## failed ...).
const NOT_SENT := "not_sent"
## Client-side error code: the request waited [member NPCBridgeProtocol.queue_timeout_s] for a
## connection to the server, which did not open.
const NOT_CONNECTED := "not_connected"
## Client-side error code: no answer within the connection's request timeout.
const TIMEOUT := "timeout"

## The request id (an int chosen by the connection, or the id given in the request's fields).
var id: Variant = null
## The message type, e.g. [code]"say"[/code].
var type: String = ""
## The message as sent (type and id included).
var message: Dictionary = {}
## Every message received for this request, in order.
var messages: Array[Dictionary] = []
## True once a server message for this request arrived (a scene reply counts for its
## [code]scene.say[/code]).
var seen: bool = false
## The replies of this [code]scene.say[/code]'s exchange, in the order they started.
var scene_replies: Array[NPCBridgeRequest] = []
## The final answer ([code]ok[/code], [code]reply.end[/code], ...); empty until done or on error.
var response: Dictionary = {}
## True once the request has its final answer or has failed.
var done: bool = false
## Empty on success; a protocol error code ([code]unknown_npc[/code], ...) or a client-side one
## ([constant CONNECTION_LOST], [constant NOT_SENT], [constant TIMEOUT]).
var error_code: String = ""
## Human-readable error text (empty on success).
var error_message: String = ""
## Whether the server says retrying may succeed.
var retryable: bool = false
## How long the server asks to wait before retrying (0 when not given).
var retry_after_ms: int = 0
## Time (msec since engine start) of the last activity: sending or a message received.
var last_activity_msec: int = 0
## The [NPCBridgeProtocol] that sent the request (a weak reference; set by the protocol).
var protocol_ref: WeakRef = null


static func _whole(value: Variant) -> int:
	return int(value) if value is int or value is float else 0


func _init(request_type: String = "", request_id: Variant = null) -> void:
	type = request_type
	id = request_id
	last_activity_msec = Time.get_ticks_msec()


## True when the request is done and did not fail.
func is_ok() -> bool:
	return done and error_code.is_empty()


## Waits until the request is done and returns it (returns at once when already done).
## [codeblock]
## var answer := await NPCBridge.request("ping").wait()
## [/codeblock]
func wait() -> NPCBridgeRequest:
	if not done:
		await finished
	return self


## Asks the server to stop working on this request (a [code]cancel[/code] message). A streamed
## reply then ends with finish [code]"cancelled"[/code] and the text so far. A scene reply is
## stopped through its [code]scene.say[/code] (cancel that request, or send
## [code]scene.interrupt[/code]); here it gives [constant ERR_UNAVAILABLE].
## [param barge_in]: the player interrupted a voiced reply; the reply then keeps the text of the
## audio already sent (what the player heard).
func cancel(barge_in: bool = false) -> Error:
	if done:
		return ERR_ALREADY_EXISTS
	if type == NPCBridgeRouter.SCENE_REPLY:
		return ERR_UNAVAILABLE
	var protocol: Object = protocol_ref.get_ref() if protocol_ref else null
	if protocol == null:
		return ERR_UNCONFIGURED
	return protocol.cancel(id, barge_in)


## Records [param incoming], a server message with this request's id ([NPCBridgeProtocol] calls
## it); [param final] is true when the message ends the request. A final [code]error[/code]
## fails the request (a [code]reply.end[/code] with finish "error" before it stays in
## [member response]); any other final message is the [member response].
func receive(incoming: Dictionary, final: bool) -> void:
	if done:
		return
	seen = true
	last_activity_msec = Time.get_ticks_msec()
	messages.append(incoming)
	message_received.emit(incoming)
	var kind: Variant = incoming.get("type")
	if kind is String and kind == "reply.end":
		response = incoming
	if not final:
		return
	if kind is String and kind == "error":
		fail(
			str(incoming.get("code", "internal")),
			str(incoming.get("message", "")),
			incoming.get("retryable") is bool and incoming["retryable"],
			_whole(incoming.get("retry_after_ms"))
		)
		return
	response = incoming
	_finish()


## Adds [param reply], a scene reply of this [code]scene.say[/code] ([NPCBridgeRouter] calls it).
func add_scene_reply(reply: NPCBridgeRequest) -> void:
	seen = true
	last_activity_msec = Time.get_ticks_msec()
	scene_replies.append(reply)
	scene_reply_started.emit(reply)


## Ends the request as failed (used by the connection for client-side failures too).
func fail(code: String, text: String, can_retry: bool = false, after_ms: int = 0) -> void:
	if done:
		return
	error_code = code
	error_message = text
	retryable = can_retry
	retry_after_ms = after_ms
	_finish()


func _finish() -> void:
	done = true
	finished.emit(self)

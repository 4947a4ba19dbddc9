class_name NPCBridgeRequest
extends RefCounted
## One request sent to the npcbridge server and everything the server answered to it.
##
## [NPCBridgeConnection] creates these and matches the server's messages to them by [member id].
## A request is [member done] after its final answer ([code]ok[/code], [code]reply.end[/code],
## [code]quest[/code], [code]memory[/code], [code]error[/code] ...) or after a client-side failure
## (connection lost, timeout). Failures are values: check [method is_ok] and [member error_code].
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

## Messages that stream before a request's final answer.
const STREAMING_TYPES: Array[String] = ["reply.start", "reply.delta", "emote", "action"]
## Client-side error code: the connection closed before the answer came.
const CONNECTION_LOST := "connection_lost"
## Client-side error code: the request could not be sent (not connected, encoding failed ...).
const NOT_SENT := "not_sent"
## Client-side error code: no answer within the connection's request timeout.
const TIMEOUT := "timeout"

## The request id (an int chosen by the connection).
var id: Variant = null
## The message type, e.g. [code]"say"[/code].
var type: String = ""
## The message as sent (type and id included).
var message: Dictionary = {}
## Every message received for this request, in order.
var messages: Array[Dictionary] = []
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
## The [NPCBridgeConnection] that sent the request (a weak reference; set by the connection).
var connection_ref: WeakRef = null


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
## reply then ends with finish [code]"cancelled"[/code] and the text so far.
func cancel() -> Error:
	if done:
		return ERR_ALREADY_EXISTS
	var connection: NPCBridgeConnection = connection_ref.get_ref() if connection_ref else null
	if connection == null:
		return ERR_UNCONFIGURED
	return connection.send_message({"type": "cancel", "id": id})


## Called by the connection for each message with this request's id.
func handle_message(incoming: Dictionary) -> void:
	if done:
		return
	last_activity_msec = Time.get_ticks_msec()
	messages.append(incoming)
	message_received.emit(incoming)
	var kind: String = incoming.get("type", "")
	if kind in STREAMING_TYPES:
		return
	if kind == "reply.end" and incoming.get("finish", "") == "error":
		# An `error` with the same id follows; keep the partial reply and wait for it.
		response = incoming
		return
	if kind == "error":
		fail(
			str(incoming.get("code", "internal")),
			str(incoming.get("message", "")),
			bool(incoming.get("retryable", false)),
			int(incoming.get("retry_after_ms", 0))
		)
		return
	response = incoming
	_finish()


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

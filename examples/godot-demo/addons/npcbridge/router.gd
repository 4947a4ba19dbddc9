class_name NPCBridgeRouter
extends RefCounted
## Which pending request each server message belongs to, and which message ends it. No socket:
## [NPCBridgeProtocol] feeds it decoded messages, and the shared flow vectors
## ([code]tests/vectors/flows.json[/code]) feed it the same way.
##
## The rule (docs/protocol.md, "Talking", "Scenes" and "Errors"):
## [br]- [code]reply.start[/code], [code]reply.delta[/code], [code]reply.audio[/code],
## [code]emote[/code], [code]action[/code] and a speech's [code]transcript[/code] never end a
## request; a [code]reply.end[/code] with finish
## [code]"error"[/code] does not either: the [code]error[/code] that follows under the same id
## ends it, and the partial reply is kept.
## [br]- An [code]error[/code] without [code]refused[/code] ends the pending request with its id.
## An [code]error[/code] with [code]refused[/code] ends it only when [code]refused[/code] is the
## type of the message sent under that id and nothing has arrived for it yet; otherwise it refused
## another message that reused the id (a duplicate [code]say[/code], a [code]cancel[/code], a
## [code]speech.chunk[/code] or [code]speech.end[/code]) and touches no request.
## [br]- A [code]reply.start[/code] whose [code]parent[/code] names a pending request opens a scene
## reply (or a world event's reaction) under its own id; [code]scene.done[/code] ends the
## [code]scene.say[/code], the [code]ok[/code] the [code]world.event[/code].
## [br]- Any other message ends its request.

## Messages of a reply in progress: they never end a request.
const STREAMING_TYPES: Array[String] = [
	"reply.start", "reply.delta", "reply.audio", "emote", "action", "transcript"
]
## The [member NPCBridgeRequest.type] of a scene reply: the client sent nothing under its id, so
## no refusal (whose [code]refused[/code] names a message type) can end it.
const SCENE_REPLY := "scene reply"

var _pending: Dictionary = {}  # id -> NPCBridgeRequest


## The String at [param key] of [param message] (empty when absent or not a String).
static func _text(message: Dictionary, key: String) -> String:
	var value: Variant = message.get(key)
	return value if value is String else ""


## Waits for the answers to [param request] (sent under [member NPCBridgeRequest.id]).
func add(request: NPCBridgeRequest) -> void:
	_pending[request.id] = request


## True when a request with [param request_id] is pending.
func has_id(request_id: Variant) -> bool:
	return _pending.has(request_id)


## Stops waiting for [param request] (it failed on the client's side).
func remove(request: NPCBridgeRequest) -> void:
	if _pending.get(request.id) == request:
		_pending.erase(request.id)


## The pending requests, oldest first.
func requests() -> Array[NPCBridgeRequest]:
	var out: Array[NPCBridgeRequest] = []
	out.assign(_pending.values())
	return out


## Forgets every pending request and returns them (the connection ended).
func take_all() -> Array[NPCBridgeRequest]:
	var out := requests()
	_pending.clear()
	return out


## Number of pending requests.
func size() -> int:
	return _pending.size()


## Routes one decoded server [param message]: which pending request it belongs to and whether
## it ends it (then the request is no longer pending). The caller hands the message on with
## [method NPCBridgeRequest.receive].
func route(message: Dictionary) -> Route:
	var request_id: Variant = message.get("id")
	if not (request_id is int or request_id is String):
		return Route.new()
	if not _pending.has(request_id):
		return _open_scene_reply(request_id, message)
	var request: NPCBridgeRequest = _pending[request_id]
	# Values are compared as Strings only: comparing a String with another type is an error.
	var kind := _text(message, "type")
	if kind == "error":
		if message.get("refused") != null:
			if _text(message, "refused") != request.type or request.seen:
				return Route.new()
		_pending.erase(request_id)
		return Route.new(request, true)
	var ends := kind not in STREAMING_TYPES
	if kind == "reply.end" and _text(message, "finish") == "error":
		ends = false
	if ends:
		_pending.erase(request_id)
	return Route.new(request, ends)


func _open_scene_reply(request_id: Variant, message: Dictionary) -> Route:
	var parent_id: Variant = message.get("parent")
	if _text(message, "type") != "reply.start" or not (parent_id is int or parent_id is String):
		return Route.new()
	if not _pending.has(parent_id):
		return Route.new()
	var parent: NPCBridgeRequest = _pending[parent_id]
	var reply := NPCBridgeRequest.new(SCENE_REPLY, request_id)
	reply.protocol_ref = parent.protocol_ref
	_pending[request_id] = reply
	parent.add_scene_reply(reply)
	return Route.new(reply, false)


## Where one message goes: to [member request] (null: it is stray), which it ends when
## [member final] is true.
class Route:
	extends RefCounted
	## The pending request the message belongs to (null: none).
	var request: NPCBridgeRequest = null
	## True when the message ends [member request] (which is no longer pending then).
	var final: bool = false

	func _init(to: NPCBridgeRequest = null, ends: bool = false) -> void:
		request = to
		final = ends

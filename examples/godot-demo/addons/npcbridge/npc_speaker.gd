@icon("res://addons/npcbridge/icon.svg")
class_name NPCSpeaker
extends Node
## Gives the NPC it is attached to a voice: [method say] sends the player's line to the npcbridge
## server and the NPC's reply streams back through the signals below.
##
## Add it as a child of an NPC, set [member persona] (or [member npc_id] for an NPC the server
## already knows from its config), then:
## [codeblock]
## $NPCSpeaker.reply_delta_received.connect(func(piece: String) -> void: bubble.text += piece)
## var reply := await $NPCSpeaker.say("Can you fix my sword?").wait()
## [/codeblock]
## The NPC is defined on the server ([code]npc.define[/code]) before its first line, and again
## after a reconnect.

## A reply started streaming.
signal reply_started
## A piece of reply text arrived.
signal reply_delta_received(text: String)
## A reply ended; [param text] is the final text, [param info] the [code]reply.end[/code] message.
signal reply_finished(text: String, info: Dictionary)
## A reply failed with [param code] (e.g. [code]unknown_npc[/code], [code]rate_limited[/code]).
signal reply_failed(code: String, message: String)
## The NPC decided to act: one of the persona's [member NPCPersona.actions].
signal action_requested(name: String, args: Dictionary)
## The NPC emoted.
signal emote_received(emote: String)

## Who the NPC is. Without one, [member npc_id] must name an NPC the server knows.
@export var persona: NPCPersona = null
## NPC id on the server (empty: the persona's name in snake_case, else the parent node's name).
@export var npc_id: String = ""
## Player id sent with each line (empty: the project setting npcbridge/dialogue/player_id).
@export var player_id: String = ""
## Game state sent with each line (location, time of day, quest flags, relationship ...).
@export var context: Dictionary = {}
## How fast the reply is needed: "realtime", "normal" or "deep" ("auto": the server decides).
@export_enum("auto", "realtime", "normal", "deep") var urgency: String = "auto"
## Path to an [NPCBridgeConnection] (empty: the [code]NPCBridge[/code] autoload).
@export var connection_path: NodePath = NodePath()

## The connection used; set it in code to override [member connection_path].
var connection: NPCBridgeConnection = null

var _defined_persona: Dictionary = {}
var _definition: NPCBridgeRequest = null
var _active: Array[NPCReply] = []


## Sends [param text] as the player's line and returns the streaming [NPCReply].
## [param extra_context] is merged over [member context]; [param fields] adds protocol fields
## ([code]max_tokens[/code], [code]temperature[/code], [code]stream[/code] ...).
func say(text: String, extra_context: Dictionary = {}, fields: Dictionary = {}) -> NPCReply:
	var reply := NPCReply.new(get_npc_id(), text)
	reply.started.connect(func() -> void: reply_started.emit())
	reply.delta_received.connect(func(piece: String) -> void: reply_delta_received.emit(piece))
	reply.action_requested.connect(
		func(action: String, args: Dictionary) -> void: action_requested.emit(action, args)
	)
	reply.emote_received.connect(func(emote: String) -> void: emote_received.emit(emote))
	reply.finished.connect(
		func(final_text: String, info: Dictionary) -> void: reply_finished.emit(final_text, info)
	)
	reply.failed.connect(
		func(code: String, message: String) -> void: reply_failed.emit(code, message)
	)
	reply.completed.connect(func(done: NPCReply) -> void: _active.erase(done))
	_active.append(reply)
	_send(reply, text, extra_context, fields)
	return reply


## Cancels every reply of this NPC still streaming.
func cancel() -> void:
	for reply in _active.duplicate():
		reply.cancel()


## True while a reply of this NPC is streaming.
func is_speaking() -> bool:
	return not _active.is_empty()


## The NPC id used on the server.
func get_npc_id() -> String:
	if not npc_id.is_empty():
		return npc_id
	if persona != null and not persona.name.is_empty():
		return persona.name.to_snake_case()
	var parent := get_parent()
	return String(parent.name).to_snake_case() if parent != null else String(name).to_snake_case()


## The connection this speaker talks through (null when there is none).
func get_connection() -> NPCBridgeConnection:
	if connection != null:
		return connection
	if not connection_path.is_empty():
		return get_node_or_null(connection_path) as NPCBridgeConnection
	return get_node_or_null(^"/root/NPCBridge") as NPCBridgeConnection


func _send(reply: NPCReply, text: String, extra_context: Dictionary, fields: Dictionary) -> void:
	var bridge := get_connection()
	if bridge == null:
		reply.fail.call_deferred(
			NPCBridgeRequest.NOT_SENT, "no NPCBridgeConnection (is the addon enabled?)"
		)
		return
	if persona != null:
		var wanted := persona.to_dict()
		if not bridge.is_defined(reply.npc) or wanted != _defined_persona:
			_defined_persona = wanted
			_definition = bridge.define_npc(reply.npc, wanted)
		if _definition != null:
			var definition := _definition
			await definition.wait()
			if not definition.is_ok():
				_defined_persona = {}
				reply.fail(definition.error_code, definition.error_message)
				return
	var message := fields.duplicate(true)
	var merged := context.duplicate(true)
	merged.merge(extra_context, true)
	if not merged.is_empty():
		message["context"] = merged
	if urgency != "auto" and not urgency.is_empty() and not message.has("urgency"):
		message["urgency"] = urgency
	var player := player_id
	if player.is_empty():
		player = str(NPCBridgeSettings.read(NPCBridgeSettings.PLAYER_ID))
	reply.attach(bridge.say(reply.npc, text, player, message))

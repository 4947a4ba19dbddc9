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

## The NPC's state toward the player changed (docs/state.md): [param state] is
## [code]{"mood", "intensity", "relationship": {"trust", "affection", "familiarity"}}[/code].
signal state_changed(state: Dictionary)
## The NPC's mood or its intensity changed.
signal mood_changed(mood: String, intensity: float)
## The NPC's relationship to the player changed.
signal relationship_changed(trust: float, affection: float, familiarity: float)
## A threshold watched with [method watch_state] was crossed: [param direction] is
## [code]entered[/code], [code]left[/code] or (a [code]mood[/code] watch) [code]changed[/code].
signal threshold_crossed(watch: String, key: String, direction: String, value: Variant)

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
## The NPC's state toward the player as last seen (empty until one arrived): every
## [code]reply.end[/code], state answer and watched crossing updates it.
var state: Dictionary = {}

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


## The player id sent with each line and state request.
func get_player_id() -> String:
	if not player_id.is_empty():
		return player_id
	return str(NPCBridgeSettings.read(NPCBridgeSettings.PLAYER_ID))


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
	var player := get_player_id()
	_listen(bridge)
	reply.attach(bridge.say(reply.npc, text, player, message))


## Asks the server for the NPC's state toward the player ([member state] follows the answer).
func get_state() -> NPCBridgeRequest:
	return _state_request("get", {})


## Sets state values: [code]{"mood", "intensity", "trust", "affection", "familiarity"}[/code].
func set_state(values: Dictionary) -> NPCBridgeRequest:
	return _state_request("set", {"values": values})


## Adds amounts to state values (a [code]mood[/code] with an [code]intensity[/code] is felt).
func nudge_state(values: Dictionary) -> NPCBridgeRequest:
	return _state_request("nudge", {"values": values})


## Watches thresholds, e.g. [code][{"key": "trust", "below": -50, "name": "hostile"}][/code]:
## [signal threshold_crossed] fires each time a change crosses one.
func watch_state(watches: Array[Dictionary]) -> NPCBridgeRequest:
	return _state_request("watch", {"watch": watches})


## Stops watching [param names] (all of this NPC's and player's watches when empty).
func unwatch_state(names: PackedStringArray = PackedStringArray()) -> NPCBridgeRequest:
	return _state_request("unwatch", {} if names.is_empty() else {"names": Array(names)})


func _state_request(op: String, fields: Dictionary) -> NPCBridgeRequest:
	var bridge := get_connection()
	if bridge == null:
		var failed := NPCBridgeRequest.new("npc.state")
		failed.fail.call_deferred(
			NPCBridgeRequest.NOT_SENT, "no NPCBridgeConnection (is the addon enabled?)"
		)
		return failed
	_listen(bridge)
	var npc := get_npc_id()
	if persona != null:
		var wanted := persona.to_dict()
		if not bridge.is_defined(npc) or wanted != _defined_persona:
			# sent before the request on the same connection, so the server knows the NPC first
			_defined_persona = wanted
			_definition = bridge.define_npc(npc, wanted)
	return bridge.npc_state(npc, get_player_id(), op, fields)


func _listen(bridge: NPCBridgeConnection) -> void:
	var states := bridge.npc_states
	if not states.state_changed.is_connected(_on_state_seen):
		states.state_changed.connect(_on_state_seen)
		states.threshold_crossed.connect(_on_threshold_crossed)


func _concerns(npc: String, player: String) -> bool:
	return npc == get_npc_id() and (player.is_empty() or player == get_player_id())


func _on_state_seen(npc: String, player: String, seen: Dictionary) -> void:
	if not _concerns(npc, player):
		return
	var before := state.duplicate(true)
	var after := state.duplicate(true)
	after.merge(seen, true)  # a mood-only state (no player) keeps the relationship known
	if after == before:
		return
	state = after
	state_changed.emit(state)
	var mood := str(after.get("mood", ""))
	var intensity := float(after.get("intensity", 0.0))
	if mood != str(before.get("mood", "")) or intensity != float(before.get("intensity", 0.0)):
		mood_changed.emit(mood, intensity)
	var bond: Variant = after.get("relationship")
	if bond is Dictionary and bond != before.get("relationship"):
		relationship_changed.emit(
			float(bond.get("trust", 0.0)),
			float(bond.get("affection", 0.0)),
			float(bond.get("familiarity", 0.0))
		)


func _on_threshold_crossed(npc: String, player: String, crossing: Dictionary) -> void:
	if _concerns(npc, player):
		threshold_crossed.emit(
			str(crossing.get("name", "")),
			str(crossing.get("key", "")),
			str(crossing.get("direction", "")),
			crossing.get("value")
		)

class_name NPCBridgeStates
extends RefCounted
## What one connection knows of NPC state (docs/state.md): the last state seen per NPC and
## player, taken from every [code]state[/code] message (an answer to [code]npc.state[/code], or
## a watched threshold crossing, which belongs to no request) and every [code]reply.end[/code]
## that carries [code]state[/code]. A state is
## [code]{"mood": String, "intensity": float, "relationship": {"trust", "affection",
## "familiarity"}}[/code]; [code]relationship[/code] is there only for a player.
## [NPCBridgeProtocol] feeds it; [NPCSpeaker] turns it into typed signals.

## The state of [param npc] toward [param player] (empty: the NPC's own mood) changed.
signal state_changed(npc: String, player: String, state: Dictionary)
## A change crossed a threshold the connection watches ([param crossing] is one entry of the
## message's [code]crossed[/code]: name, key, value, below/above, direction).
signal threshold_crossed(npc: String, player: String, crossing: Dictionary)

var _known: Dictionary = {}


static func _key(npc: String, player: String) -> String:
	return npc + "\u0001" + player


## The last state seen for [param npc] and [param player] (empty when none was seen).
func of(npc: String, player: String = "") -> Dictionary:
	return _known.get(_key(npc, player), {})


## Takes the state [param message] carries, if any. [param player] is the player of the
## request the message answers (a [code]say[/code]), when the caller knows it.
func seen(message: Dictionary, player: String = "") -> void:
	var kind: Variant = message.get("type")
	var state := {}
	if kind == "state":
		var named: Variant = message.get("player")
		player = named if named is String else ""
		for key: String in ["mood", "intensity", "relationship"]:
			if message.has(key):
				state[key] = message[key]
	elif kind == "reply.end" and message.get("state") is Dictionary:
		var carried: Dictionary = message["state"]
		state = carried.duplicate(true)
		if player.is_empty():
			# a reply of a scene or a reaction names no player: only the NPC's own mood is known
			state.erase("relationship")
	else:
		return
	var npc := str(message.get("npc", ""))
	var key := _key(npc, player)
	var before: Dictionary = _known.get(key, {})
	_known[key] = state
	if before != state:
		state_changed.emit(npc, player, state)
	var crossed: Variant = message.get("crossed")
	if crossed is Array:
		for crossing: Variant in crossed:
			if crossing is Dictionary:
				threshold_crossed.emit(npc, player, crossing)

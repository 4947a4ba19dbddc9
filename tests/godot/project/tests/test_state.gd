extends NPCBTestCase
## NPC state (docs/state.md) in the addon: NPCPersona's starting state, the shared state vectors
## through a connection over a fake socket into NPCSpeaker's typed signals, then npc.state,
## thresholds, reply.end.state and a world event against the test stack.

const MsgPack := preload("res://addons/npcbridge/msgpack.gd")
# gdlint: disable=constant-name
const FakeSocket := preload("res://tests/test_protocol.gd").FakeSocket
# gdlint: enable=constant-name
const VECTORS := "res://vectors/"

var _bridge: NPCBridgeConnection = null


## A vector's message, decoded from its msgpack bytes by the addon's codec.
static func _vector(name: String) -> Dictionary:
	var bytes := FileAccess.get_file_as_bytes(VECTORS + name + ".msgpack")
	return MsgPack.decode(bytes).value


func test_persona_declares_its_starting_state() -> void:
	var persona := NPCPersona.new()
	persona.name = "Hilde"
	check(not persona.to_dict().has("state"), "no state unless it keeps one")
	persona.keeps_state = true
	persona.trust = 10.0
	persona.volatility = 1.5
	persona.mood_half_life_s = 300.0
	check_eq(
		persona.to_dict()["state"],
		{
			"mood": "neutral",
			"trust": 10.0,
			"affection": 0.0,
			"familiarity": 0.0,
			"volatility": 1.5,
			"mood_half_life_s": 300.0,
		},
		"persona.state"
	)


func test_state_vectors_reach_the_speaker_signals() -> void:
	var fake := FakeSocket.new()
	add_child(fake)
	var bridge := NPCBridgeConnection.new(fake)
	add_child(bridge)
	bridge.connect_to_server("ws://fake.invalid/")
	fake.opened.emit()
	fake.deliver({"type": "welcome", "protocol": 1, "session": "fake", "server": "npcbridge/x"})
	var speaker := NPCSpeaker.new()
	speaker.npc_id = "guard"
	speaker.player_id = "p1"
	speaker.connection = bridge
	add_child(speaker)
	var changes: Array[Dictionary] = []
	var moods: Array = []
	var bonds: Array = []
	var crossings: Array = []
	speaker.state_changed.connect(func(s: Dictionary) -> void: changes.append(s))
	speaker.mood_changed.connect(func(m: String, i: float) -> void: moods.append([m, i]))
	speaker.relationship_changed.connect(
		func(t: float, a: float, f: float) -> void: bonds.append([t, a, f])
	)
	speaker.threshold_crossed.connect(
		func(w: String, k: String, d: String, v: Variant) -> void: crossings.append([w, k, d, v])
	)
	var watched := speaker.watch_state([{"key": "trust", "below": -50, "name": "hostile"}])
	check_eq(fake.sent.back().get("op"), "watch", "npc.state watch sent")
	check_eq(fake.sent.back().get("player"), "p1", "for the speaker's player")
	var answer := {
		"type": "state",
		"id": watched.id,
		"npc": "guard",
		"player": "p1",
		"mood": "neutral",
		"intensity": 0.0,
		"reason": "watch",
		"watching": ["hostile"],
		"relationship": {"trust": 10.0, "affection": 0.0, "familiarity": 0.0},
	}
	fake.deliver(answer)
	check(watched.is_ok(), "watch answered")
	fake.deliver(_vector("state-crossed"))
	check_eq(speaker.state.get("mood"), "angry", "speaker.state follows the crossing")
	check_eq(changes.size(), 2, "state_changed for the answer and the crossing")
	check_eq(moods.back(), ["angry", 0.6], "mood_changed")
	check_eq(bonds.back(), [-55.5, -10.25, 12.5], "relationship_changed")
	check_eq(crossings.size(), 2, "one threshold_crossed per crossing")
	if crossings.size() == 2:
		check_eq(crossings[0], ["hostile", "trust", "entered", -55.5], "the trust crossing")
		check_eq(crossings[1].slice(0, 3), ["mood", "mood", "changed"], "the mood crossing")
	check_eq(
		bridge.npc_states.of("guard", "p1").get("relationship", {}).get("trust"),
		-55.5,
		"the connection knows it too"
	)
	var reply := speaker.say("Here, take this gold.", {}, {"id": "t-9", "effects": {"trust": 5}})
	await get_tree().process_frame
	check_eq(fake.sent.back().get("effects"), {"trust": 5}, "say carries effects")
	fake.deliver(_vector("reply.end-state"))
	await reply.wait()
	check_eq(speaker.state["relationship"]["familiarity"], 13.5, "reply.end.state is the say's")
	check_eq(moods.back(), ["happy", 0.2], "the reply's mood")
	# a state of another NPC or player leaves this speaker alone
	var other := _vector("state")
	other["npc"] = "merchant"
	var before := changes.size()
	fake.deliver(other)
	check_eq(changes.size(), before, "another NPC's state is not this speaker's")
	bridge.close()


func test_state_and_world_event_against_the_server() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var stamp := "%d-%d" % [Time.get_ticks_usec(), randi()]
	var persona := NPCPersona.new()
	persona.name = "Hilde"
	persona.description = "A town guard at the market gate."
	persona.keeps_state = true
	persona.trust = 10.0
	var speaker := NPCSpeaker.new()
	speaker.npc_id = "gd-guard-" + stamp
	speaker.player_id = "gd-player-" + stamp
	speaker.persona = persona
	speaker.connection = _bridge
	add_child(speaker)
	var got := await speaker.get_state().wait()
	check(got.is_ok(), "get: %s %s" % [got.error_code, got.error_message])
	check_eq(speaker.state.get("relationship", {}).get("trust"), 10.0, "the persona's start")
	var crossings: Array[String] = []
	speaker.threshold_crossed.connect(
		func(w: String, _k: String, d: String, _v: Variant) -> void: crossings.append(w + " " + d)
	)
	var watch := await speaker.watch_state([{"key": "trust", "below": 0, "name": "wary"}]).wait()
	check_eq(watch.response.get("watching"), ["wary"], "watching")
	var done_set := await (
		speaker.set_state({"trust": -30, "mood": "angry", "intensity": 0.8}).wait()
	)
	check(done_set.is_ok(), "set: " + done_set.error_code)
	check(await wait_until(func() -> bool: return not crossings.is_empty(), 5.0), "crossed")
	check_eq(crossings, ["wary entered"], "threshold_crossed")
	var bonds: Array = []
	speaker.relationship_changed.connect(
		func(t: float, _a: float, f: float) -> void: bonds.append([t, f])
	)
	var line := "[[reply:Move along.]] Let me pass."
	var reply := await speaker.say(line, {}, {"effects": {"trust": 5}}).wait()
	check(reply.is_ok(), "say: " + reply.error_code)
	check_eq(bonds.back() if not bonds.is_empty() else [], [-25.0, 1.0], "after the reply")
	var event := await (
		_bridge
		. world_event(
			"Someone stole an apple from the stall",
			{"npc": speaker.npc_id, "player": speaker.player_id, "react": true}
		)
		. wait()
	)
	check(event.is_ok(), "world.event: %s %s" % [event.error_code, event.error_message])
	check_eq(event.response.get("type"), "ok", "ends with ok")
	check_eq(event.scene_replies.size(), 1, "one reaction streamed")
	var after := await speaker.get_state().wait()
	check_eq(after.response.get("relationship", {}).get("trust"), -45.0, "the theft cost trust")
	var refused := await _bridge.npc_state("blacksmith", "p1").wait()
	check_eq(refused.error_code, "bad_request", "an NPC without state")


func _open() -> bool:
	_bridge = new_connection()
	_bridge.connect_to_server()
	return await wait_until(_bridge.is_open, 15.0)

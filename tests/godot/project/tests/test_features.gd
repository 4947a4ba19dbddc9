extends NPCBTestCase
## Gameplay features (docs/features.md) through the addon's generic request API, against the
## test stack. The fake upstream's directives ride in the player text or the quest theme; the
## stack's moderation plugin blocks the word "grobblewort".

const QUEST_JSON := (
	'{"title": "Rats in the Cellar", "description": "Rats ate the cheese.", '
	+ '"objectives": ["Find the cellar key", "Kill the rats"], "rewards": ["30 gold"]}'
)

var _bridge: NPCBridgeConnection = null


func test_features_are_announced() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var features: Array = _bridge.welcome.get("features", [])
	for feature: String in ["quest", "barks", "scenes", "actions", "emotes"]:
		check(feature in features, "welcome.features has " + feature)


func test_quest_is_validated() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var fields := {
		"theme": "rats [[json:" + QUEST_JSON + "]]", "difficulty": "easy", "npc": "blacksmith"
	}
	var quest := await _bridge.request("quest.generate", fields).wait()
	check(quest.is_ok(), "quest ok: %s %s" % [quest.error_code, quest.error_message])
	check_eq(quest.response.get("type"), "quest", "answer type")
	check_eq(quest.response.get("source"), "json", "first answer validated")
	var body: Dictionary = quest.response.get("quest", {})
	check_eq(body.get("title"), "Rats in the Cellar", "title")
	check_eq(body.get("objectives"), ["Find the cellar key", "Kill the rats"], "objectives")
	check_eq(body.get("rewards"), ["30 gold"], "rewards")
	check_eq(body.get("difficulty"), "easy", "difficulty")
	check_eq(body.get("giver"), "blacksmith", "giver")
	var fields_bad := {"theme": "nothing [[json:{}]]", "difficulty": "hard"}
	var failed := await _bridge.request("quest.generate", fields_bad).wait()
	check_eq(failed.error_code, "upstream_error", "no unvalidated quest is ever returned")


func test_rejected_action_emotes_and_speaker_cut() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var persona := {
		"name": "Mira",
		"actions":
		[
			{
				"name": "give_item",
				"description": "Give the player an item.",
				"parameters":
				{
					"type": "object",
					"properties": {"item": {"type": "string"}},
					"required": ["item"],
				},
			}
		],
	}
	var defined := await (
		_bridge.request("npc.define", {"npc": "gd_shop", "persona": persona}).wait()
	)
	check(defined.is_ok(), "npc.define: " + defined.error_code)
	var line := '[[reply:*nods* Let me look.]] [[tool:give_item:{"colour": "red"}]]'
	var say := {"npc": "gd_shop", "player": "gd-feat", "text": line}
	var reply := await _bridge.request("say", say).wait()
	check(reply.is_ok(), "say ok: " + reply.error_code)
	check_eq(_of_type(reply.messages, "action"), [], "an invalid tool call is never an action")
	var rejected: Array = reply.response.get("rejected_actions", [])
	check_eq(rejected.size(), 1, "the call is reported")
	if rejected.size() == 1:
		check_eq(rejected[0].get("name"), "give_item", "rejected action name")
	check_eq(reply.response.get("text"), "Let me look.", "the text still streamed")
	var emotes := _of_type(reply.messages, "emote")
	check_eq(emotes.size(), 1, "one emote event")
	if emotes.size() == 1:
		check_eq(emotes[0].get("emote"), "nods", "emote text")
	var scripted := {
		"npc": "blacksmith", "player": "gd-feat", "text": "[[reply:Aye.\nPlayer: Deal!]]"
	}
	var cut := await _bridge.request("say", scripted).wait()
	check(cut.is_ok(), "say ok: " + cut.error_code)
	check_eq(cut.response.get("text"), "Aye.", "the NPC never speaks as the player")


func test_barks_in_request_order() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var npcs := [{"npc": "mage"}, {"npc": "nobody"}, {"npc": "blacksmith"}]
	var barks := await _bridge.request("barks.generate", {"npcs": npcs}).wait()
	check(barks.is_ok(), "barks ok: " + barks.error_code)
	var results: Array = barks.response.get("results", [])
	check_eq(results.size(), 3, "one result per npc")
	if results.size() != 3:
		return
	check_eq(results[0].get("npc"), "mage", "request order")
	check(str(results[0].get("text", "")).length() > 0, "a bark")
	check_eq(results[1].get("error", {}).get("code"), "unknown_npc", "its own error")
	check_eq(results[2].get("npc"), "blacksmith", "request order")


func test_group_scene_addressed_first_and_bounded() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var seen: Array[Dictionary] = []
	_bridge.message_received.connect(func(m: Dictionary) -> void: seen.append(m))
	var start := {
		"scene": "gd-tavern",
		"player": "gd-feat",
		"npcs": ["blacksmith", "mage"],
		"player_name": "Rowan"
	}
	var started := await _bridge.request("scene.start", start).wait()
	check(started.is_ok(), "scene.start: " + started.error_code)
	var line := {"scene": "gd-tavern", "text": "Aelindra, what does Brom know?", "max_replies": 2}
	var said := await _bridge.request("scene.say", line).wait()
	check(said.is_ok(), "scene.say: " + said.error_code)
	check_eq(said.response.get("type"), "scene.done", "the exchange ends with scene.done")
	check_eq(said.response.get("stopped"), "bound", "stopped at the bound")
	var replies: Array = said.response.get("replies", [])
	check_eq(replies.size(), 2, "two replies")
	if replies.size() == 2:
		check_eq(replies[0].get("npc"), "mage", "the addressed NPC answers first")
		check_eq(replies[1].get("npc"), "blacksmith", "then the NPC the mage named")
		check_eq(replies[0].get("id"), "%s/1" % said.id, "sub-reply id")
	var starts := _of_type(seen, "reply.start")
	check_eq(starts.size(), 2, "each reply streamed under its own id")
	if starts.size() == 2:
		check_eq(starts[0].get("npc"), "mage", "reply.start names the speaker")
		check_eq(starts[1].get("id"), "%s/2" % said.id, "second reply id")
		check_eq(starts[1].get("scene"), "gd-tavern", "reply.start names the scene")
	var ended := await _bridge.request("scene.end", {"scene": "gd-tavern"}).wait()
	check(ended.is_ok(), "scene.end: " + ended.error_code)


func test_blocked_player_line_is_filtered() -> void:
	if not require_server() or not check(await _open(), "connected"):
		return
	var say := {"npc": "blacksmith", "player": "gd-feat", "text": "you grobblewort!"}
	var reply := await _bridge.request("say", say).wait()
	check_eq(reply.error_code, "filtered", "moderation refuses the line")


func _open() -> bool:
	_bridge = new_connection()
	_bridge.connect_to_server()
	return await wait_until(_bridge.is_open, 15.0)


func _of_type(messages: Array, kind: String) -> Array:
	return messages.filter(func(m: Dictionary) -> bool: return m.get("type") == kind)

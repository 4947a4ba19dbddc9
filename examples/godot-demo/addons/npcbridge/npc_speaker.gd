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
##
## [b]Voice.[/b] Give it an [member audio_player] (an [AudioStreamPlayer], [AudioStreamPlayer2D]
## or [AudioStreamPlayer3D]) and a persona with a [member NPCPersona.voice_name]: the NPC's
## replies are spoken through it, frame after frame with no gap, and [signal mouth_changed]
## moves the lips. [method start_talking] / [method stop_talking] are push-to-talk: the
## microphone goes to the server as the player's line (the NPC stops talking at once when the
## player starts: barge-in).
## [codeblock]
## $NPCSpeaker.mouth_changed.connect(func(openness: float) -> void: jaw.rotation.x = openness * 0.4)
## func _unhandled_input(event: InputEvent) -> void:
##     if event.is_action_pressed("talk"):
##         $NPCSpeaker.start_talking()
##     elif event.is_action_released("talk"):
##         $NPCSpeaker.stop_talking()
## [/codeblock]

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
## The NPC started speaking aloud (the first audio frame of a reply plays).
signal speech_started
## The NPC stopped speaking: all of the reply's audio played, or [param interrupted] (barge-in,
## [method stop_speaking]).
signal speech_finished(interrupted: bool)
## How open the NPC's mouth is (0..1), following the audio as it plays.
signal mouth_changed(openness: float)
## What the server heard the player say (after [method stop_talking]).
signal transcript_received(text: String)

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

@export_group("Voice")
## What the NPC's replies sound through (none: replies are text only).
@export var audio_player: Node = null
## Voice the replies: "auto" (the persona's [member NPCPersona.voice_always] decides), "on"
## (ask for audio on every line) or "off".
@export_enum("auto", "on", "off") var voice_replies: String = "on"
## The audio bus the microphone plays on for push-to-talk (made, muted, when missing).
@export var microphone_bus: StringName = &"NPCBridgeMic"
## Starting to talk while the NPC speaks interrupts it (barge-in).
@export var barge_in_on_talk: bool = true
## Seconds of recorded audio per [code]speech.chunk[/code] (ten messages a second stay well under
## the server's message rate).
@export_range(0.02, 1.0, 0.01) var chunk_s: float = 0.1
@export_group("")

## The connection used; set it in code to override [member connection_path].
var connection: NPCBridgeConnection = null
## The NPC's state toward the player as last seen (empty until one arrived): every
## [code]reply.end[/code], state answer and watched crossing updates it.
var state: Dictionary = {}
## Plays the replies' audio (made for [member audio_player] at the first frame).
var voice: NPCVoicePlayer = null
## Records the microphone for push-to-talk (made at the first [method start_talking]).
var microphone: NPCVoiceCapture = null

var _defined_persona: Dictionary = {}
var _definition: NPCBridgeRequest = null
var _active: Array[NPCReply] = []
var _voiced: NPCReply = null  # the reply whose audio plays
var _voice_queue: Array[NPCReply] = []  # replies whose audio waits for the one playing
var _muted: Array[NPCReply] = []  # replies whose audio is not played (stopped, barged in)
var _talking: NPCSpeechStream = null
var _recorded: PackedByteArray = PackedByteArray()  # recorded, not sent yet


func _process(_delta: float) -> void:
	if voice != null:
		voice.process()
	if _talking != null:
		_recorded.append_array(microphone.read())
		if _recorded.size() >= int(microphone.get_sample_rate() * chunk_s) * 2:
			_talking.chunk(_recorded)
			_recorded = PackedByteArray()
		_talking.flush()


## Sends [param text] as the player's line and returns the streaming [NPCReply].
## [param extra_context] is merged over [member context]; [param fields] adds protocol fields
## ([code]max_tokens[/code], [code]temperature[/code], [code]stream[/code] ...).
func say(text: String, extra_context: Dictionary = {}, fields: Dictionary = {}) -> NPCReply:
	var reply := _new_reply(text)
	_send(reply, text, extra_context, fields)
	return reply


## Push-to-talk pressed: interrupts the NPC when it speaks ([member barge_in_on_talk]), starts
## recording the microphone and streams it to the server as the player's line. Returns the
## reply, which starts once [method stop_talking] is called ([signal transcript_received] first).
## It fails with [code]no_microphone[/code] when audio input is off
## ([code]audio/driver/enable_input[/code]).
func start_talking(extra_context: Dictionary = {}, fields: Dictionary = {}) -> NPCReply:
	if _talking != null:
		stop_talking()
	if barge_in_on_talk:
		barge_in()
	var reply := _new_reply("")
	var bridge := get_connection()
	if bridge == null:
		reply.fail.call_deferred(NPCBridgeRequest.NOT_SENT, "no NPCBridgeConnection")
		return reply
	if microphone == null:
		microphone = NPCVoiceCapture.new(self, microphone_bus)
	if microphone.start() != OK:
		reply.fail.call_deferred("no_microphone", "audio input is off or unavailable")
		return reply
	_define(bridge, reply.npc)
	_listen(bridge)
	var message := _turn_fields(extra_context, fields)
	message["format"] = "pcm16"
	message["sample_rate"] = microphone.get_sample_rate()
	message["channels"] = 1
	_recorded = PackedByteArray()
	_talking = bridge.speech_start(reply.npc, get_player_id(), message)
	reply.attach(_talking.request)
	return reply


## Push-to-talk released: the rest of the recording and [code]speech.end[/code] go out.
func stop_talking() -> void:
	if _talking == null:
		return
	_recorded.append_array(microphone.stop())
	_talking.chunk(_recorded)
	_recorded = PackedByteArray()
	_talking.finish()
	_talking = null


## True while the microphone is recording for [method start_talking].
func is_talking() -> bool:
	return _talking != null


## The player interrupts: every reply of this NPC is cancelled as a barge-in (each keeps the
## text the player heard) and its voice stops at once.
func barge_in() -> void:
	for reply in _active.duplicate():
		reply.cancel(true)
	stop_speaking()


## Stops the NPC's voice at once (the replies go on as text; audio still on its way is dropped).
func stop_speaking() -> void:
	for reply in _active:
		if reply not in _muted:
			_muted.append(reply)
	_voice_queue.clear()
	_voiced = null
	if voice != null:
		voice.stop()


## True while the NPC's voice plays.
func is_speaking_aloud() -> bool:
	return voice != null and voice.is_speaking()


func _new_reply(text: String) -> NPCReply:
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
	reply.transcript_received.connect(func(heard: String) -> void: transcript_received.emit(heard))
	reply.audio_received.connect(_on_audio.bind(reply))
	reply.completed.connect(_on_completed)
	_active.append(reply)
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
	var definition := _define(bridge, reply.npc)
	if definition != null:
		await definition.wait()
		if not definition.is_ok():
			_defined_persona = {}
			reply.fail(definition.error_code, definition.error_message)
			return
	_listen(bridge)
	reply.attach(bridge.say(reply.npc, text, get_player_id(), _turn_fields(extra_context, fields)))


# Sends the persona when the server does not have it as it is; the definition to wait for.
func _define(bridge: NPCBridgeConnection, npc: String) -> NPCBridgeRequest:
	if persona == null:
		return null
	var wanted := persona.to_dict()
	if not bridge.is_defined(npc) or wanted != _defined_persona:
		_defined_persona = wanted
		_definition = bridge.define_npc(npc, wanted)
	return _definition


# The optional fields of a line: context, urgency, voice (and the caller's own fields).
func _turn_fields(extra_context: Dictionary, fields: Dictionary) -> Dictionary:
	var message := fields.duplicate(true)
	var merged := context.duplicate(true)
	merged.merge(extra_context, true)
	if not merged.is_empty():
		message["context"] = merged
	if urgency != "auto" and not urgency.is_empty() and not message.has("urgency"):
		message["urgency"] = urgency
	if audio_player != null and voice_replies != "auto" and not message.has("voice"):
		message["voice"] = voice_replies == "on"
	return message


func _on_audio(frame: Dictionary, reply: NPCReply) -> void:
	if audio_player == null or reply in _muted:
		return
	if voice == null:
		voice = NPCVoicePlayer.new(audio_player)
		voice.speech_started.connect(func() -> void: speech_started.emit())
		voice.mouth_changed.connect(func(openness: float) -> void: mouth_changed.emit(openness))
		voice.speech_finished.connect(_on_speech_finished)
	if _voiced == null:
		_voiced = reply
	if reply == _voiced:
		voice.push(frame)
	elif reply not in _voice_queue:
		_voice_queue.append(reply)


func _on_completed(reply: NPCReply) -> void:
	_active.erase(reply)
	_muted.erase(reply)
	if reply == _voiced:
		voice.close()


func _on_speech_finished(interrupted: bool) -> void:
	speech_finished.emit(interrupted)
	if interrupted:
		return
	_voiced = null
	# the next reply that has audio waiting speaks now, from its first frame
	while not _voice_queue.is_empty() and _voiced == null:
		var next: NPCReply = _voice_queue.pop_front()
		_voiced = next
		for frame in next.audio_frames:
			voice.push(frame)
		if next.done:
			voice.close()


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
	# the definition goes before the request on the same connection: the server knows the NPC first
	_define(bridge, npc)
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

extends Control
## The npcbridge demo: pick Brom the blacksmith or Aelindra the elf mage, type a line (or hold
## "Hold to talk" and speak), and watch the reply stream into the dialogue box while the NPC says
## it aloud, its portrait's letter moving with its mouth. Each NPC keeps its feelings
## (docs/state.md): the trust bar on its card moves with every exchange and with "Give a gift" (a
## world event the NPC reacts to).
##
## Run scripted (the test harness does this): [code]-- --ws=URL --demo-npc=blacksmith
## --demo-say=TEXT[/code] connects to URL, says TEXT, waits for the full reply, prints it as
## [code]DEMO_REPLY {json}[/code] (with the audio frames received and the seconds spoken, once
## the NPC has finished speaking), then gives a gift and prints [code]DEMO_GIFT {json}[/code]
## (the reaction and the trust bar before and after), and quits. With [code]--harness=URL[/code]
## it first asks the harness to take a screenshot.

## Stage directions for the test server's fake model ([[reply:...]] etc.), hidden when shown.
const DIRECTIVE_PATTERN := "\\s*\\[\\[.*?\\]\\]"

var _speaker: NPCSpeaker = null
var _reply: NPCReply = null
var _directives := RegEx.create_from_string(DIRECTIVE_PATTERN)

@onready var _status: Label = %Status
@onready var _speaker_name: Label = %SpeakerName
@onready var _line: RichTextLabel = %Line
@onready var _input: LineEdit = %PlayerInput
@onready var _say_button: Button = %SayButton
@onready var _talk_button: Button = %TalkButton
@onready var _brom: NPCSpeaker = %BromSpeaker
@onready var _mage: NPCSpeaker = %MageSpeaker
@onready var _gift_button: Button = %GiftButton
@onready var _trust_bars: Dictionary = {_brom: %BromTrust, _mage: %MageTrust}


func _ready() -> void:
	NPCBridge.state_changed.connect(_on_state_changed)
	_on_state_changed(NPCBridge.state)
	%TalkToBrom.pressed.connect(_select.bind(_brom))
	%TalkToMage.pressed.connect(_select.bind(_mage))
	_say_button.pressed.connect(_submit)
	_gift_button.pressed.connect(_give_gift)
	NPCBridge.connected.connect(func(_welcome: Dictionary) -> void: _load_states())
	_talk_button.button_down.connect(_start_talking)
	_talk_button.button_up.connect(func() -> void: _speaker.stop_talking())
	_input.text_submitted.connect(func(_text: String) -> void: _submit())
	for speaker: NPCSpeaker in [_brom, _mage]:
		speaker.reply_delta_received.connect(_on_delta)
		speaker.emote_received.connect(_on_emote)
		speaker.action_requested.connect(_on_action)
		speaker.reply_finished.connect(_on_finished)
		speaker.reply_failed.connect(_on_failed)
		speaker.relationship_changed.connect(_on_relationship.bind(speaker))
		speaker.transcript_received.connect(_on_transcript)
		var initial: Label = speaker.get_node("../Row/Portrait/Initial")
		initial.resized.connect(func() -> void: initial.pivot_offset = initial.size / 2.0)
		speaker.mouth_changed.connect(
			func(openness: float) -> void: initial.scale = Vector2(1.0, 1.0 + 0.35 * openness)
		)
	_select(_brom)
	var options := _parse_args(OS.get_cmdline_user_args())
	if options.has("ws"):
		NPCBridge.connect_to_server(options["ws"])
	if options.has("demo-say"):
		_run_scripted(options)


func _select(speaker: NPCSpeaker) -> void:
	_speaker = speaker
	_speaker_name.text = speaker.persona.name
	_input.placeholder_text = "Say something to %s..." % speaker.persona.name
	_input.grab_focus()


func _submit() -> void:
	var text := _input.text.strip_edges()
	if text.is_empty() or _speaker == null:
		return
	_input.clear()
	if _reply != null and not _reply.done:
		_reply.cancel()
	_speaker_name.text = _speaker.persona.name
	_line.clear()
	_line.push_color(Color(0.62, 0.78, 1.0))
	_line.add_text("You: " + _directives.sub(text, "", true).strip_edges())
	_line.pop()
	_line.add_text("\n\n%s: " % _speaker.persona.name)
	_reply = _speaker.say(text)


func _start_talking() -> void:
	if _speaker == null:
		return
	_speaker_name.text = _speaker.persona.name
	_line.clear()
	_reply = _speaker.start_talking()


func _on_transcript(text: String) -> void:
	_line.push_color(Color(0.62, 0.78, 1.0))
	_line.add_text("You: " + text)
	_line.pop()
	_line.add_text("\n\n%s: " % _speaker.persona.name)


func _on_delta(piece: String) -> void:
	_line.add_text(piece)


func _on_emote(emote: String) -> void:
	_line.push_italics()
	_line.push_color(Color(0.85, 0.75, 0.5))
	_line.add_text("*%s* " % emote)
	_line.pop()
	_line.pop()


func _on_action(action: String, _args: Dictionary) -> void:
	_status.text = "%s wants to: %s" % [_speaker.persona.name, action]


func _on_finished(text: String, info: Dictionary) -> void:
	var words := text.split(" ", false).size()
	_status.text = (
		"%s finished (%s): %d words" % [_speaker.persona.name, info.get("finish", "?"), words]
	)


func _on_failed(code: String, message: String) -> void:
	_line.push_color(Color(1.0, 0.45, 0.4))
	_line.add_text("\n[%s] %s" % [code, message])
	_line.pop()


## Each NPC's state toward the player, so the bars start where the server has them.
func _load_states() -> void:
	for speaker: NPCSpeaker in [_brom, _mage]:
		speaker.get_state()


func _on_relationship(
	trust: float, _affection: float, _familiarity: float, who: NPCSpeaker
) -> void:
	var bar: ProgressBar = _trust_bars[who]
	bar.value = trust
	bar.tooltip_text = "%s trusts you: %d" % [who.persona.name, roundi(trust)]


## A world event: the player gives the NPC a gift. The NPC remembers it, its trust grows, and
## it reacts with a short line, streamed into the dialogue box.
func _give_gift() -> NPCBridgeRequest:
	var speaker := _speaker
	var what := "The player gave %s a fine gift." % speaker.persona.name
	_line.clear()
	_line.push_color(Color(0.62, 0.78, 1.0))
	_line.add_text("(You give %s a gift.)" % speaker.persona.name)
	_line.pop()
	_line.add_text("\n\n%s: " % speaker.persona.name)
	var fields := {"npc": speaker.get_npc_id(), "player": speaker.get_player_id(), "react": true}
	var event := NPCBridge.world_event(what, fields)
	event.scene_reply_started.connect(
		func(reaction: NPCBridgeRequest) -> void:
			reaction.message_received.connect(
				func(message: Dictionary) -> void:
					if message.get("type") == "reply.delta":
						_line.add_text(str(message.get("text", "")))
			)
	)
	return event


func _on_state_changed(state: NPCBridgeConnection.State) -> void:
	var names := {
		NPCBridgeConnection.State.DISCONNECTED: "not connected",
		NPCBridgeConnection.State.CONNECTING: "connecting to %s..." % NPCBridge.url,
		NPCBridgeConnection.State.HANDSHAKING: "saying hello...",
		NPCBridgeConnection.State.OPEN: "connected to %s" % NPCBridge.url,
		NPCBridgeConnection.State.WAITING_TO_RECONNECT: "server unreachable, retrying...",
	}
	_status.text = "npcbridge: " + str(names.get(state, "?"))
	_say_button.disabled = state != NPCBridgeConnection.State.OPEN
	_gift_button.disabled = _say_button.disabled
	var hearing: bool = "speech_in" in NPCBridge.welcome.get("features", [])
	_talk_button.disabled = _say_button.disabled or not hearing


func _parse_args(args: PackedStringArray) -> Dictionary:
	var out := {}
	for arg in args:
		if arg.begins_with("--") and "=" in arg:
			var split := arg.find("=")
			out[arg.substr(2, split - 2)] = arg.substr(split + 1)
	return out


func _run_scripted(options: Dictionary) -> void:
	var deadline := Time.get_ticks_msec() + 20000
	while not NPCBridge.is_open() and Time.get_ticks_msec() < deadline:
		await get_tree().process_frame
	_select(_mage if options.get("demo-npc", "") == "mage" else _brom)
	_input.text = options["demo-say"]
	_submit()
	var reply := await _reply.wait()
	var spoke := {"finished": false}
	_speaker.speech_finished.connect(func(_interrupted: bool) -> void: spoke["finished"] = true)
	while _speaker.is_speaking_aloud() and Time.get_ticks_msec() < deadline + 20000:
		await get_tree().process_frame
	var record := {
		"ok": reply.is_ok(),
		"npc": reply.npc,
		"text": reply.text,
		"shown": _line.get_parsed_text(),
		"error": reply.error_code,
		"audio_frames": reply.audio_frames.size(),
		"spoken_s": _speaker.voice.get_position() if _speaker.voice != null else 0.0,
		"speech_finished": spoke["finished"],
	}
	print("DEMO_REPLY " + JSON.stringify(record))
	var bar: ProgressBar = _trust_bars[_speaker]
	var trust_before := bar.value
	var gift := await _give_gift().wait()
	await get_tree().create_timer(0.2).timeout  # the state frames of the event
	var gave := {
		"ok": gift.is_ok(),
		"reactions": gift.response.get("reactions", []),
		"trust_before": trust_before,
		"trust_after": bar.value,
		"shown": _line.get_parsed_text(),
	}
	print("DEMO_GIFT " + JSON.stringify(gave))
	_input.release_focus()  # no blinking caret: the screenshot stays the same from run to run
	await get_tree().create_timer(0.5).timeout
	if options.has("harness"):
		var http := HTTPRequest.new()
		add_child(http)
		http.request(String(options["harness"]) + "/screenshot", [], HTTPClient.METHOD_POST, "")
		await http.request_completed
	get_tree().quit(0 if reply.is_ok() else 1)

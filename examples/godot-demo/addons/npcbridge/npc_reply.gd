class_name NPCReply
extends RefCounted
## One reply of an NPC, streaming in. [method NPCSpeaker.say] returns it.
##
## Connect to its signals, or [code]await[/code] the whole reply:
## [codeblock]
## var reply := $Blacksmith/NPCSpeaker.say("Can you fix my sword?")
## reply.delta_received.connect(func(piece: String) -> void: label.text += piece)
## await reply.wait()
## if reply.is_ok():
##     print(reply.text, " (", reply.finish, ")")
## else:
##     print("failed: ", reply.error_code)
## [/codeblock]

## The server started the reply.
signal started
## A piece of text arrived ([param text] is the new piece; [member text] has everything so far).
signal delta_received(text: String)
## The NPC decided to act (a tool call the game declared in the persona's actions).
signal action_requested(name: String, args: Dictionary)
## The NPC emoted (e.g. "wipes his hands on his apron").
signal emote_received(emote: String)
## A piece of the NPC's voice arrived: a [code]reply.audio[/code] frame (in order:
## [code]seq[/code] 0, 1, 2 ...; [code]audio[/code] is 16-bit PCM, [code]mouth[/code] its
## envelope; see [NPCVoice]). [NPCSpeaker] plays them.
signal audio_received(frame: Dictionary)
## What the server heard the player say (a reply to speech: [method NPCSpeaker.start_talking]).
signal transcript_received(text: String)
## The reply ended: [param text] is the final text, [param info] the [code]reply.end[/code]
## message (finish, model, usage, cost_usd, timing ...). Also emitted for a cancelled reply
## ([code]info.finish == "cancelled"[/code]).
signal finished(text: String, info: Dictionary)
## The reply failed: [param code] is the protocol error code (e.g. [code]unknown_npc[/code]) or a
## client-side one (see [NPCBridgeRequest]); [member text] keeps any partial text.
signal failed(code: String, message: String)
## Emitted once at the very end, whether the reply finished or failed.
signal completed(reply: NPCReply)

## The NPC id that answers.
var npc: String = ""
## What the player said.
var prompt: String = ""
## The reply text so far (the final, cleaned text once finished).
var text: String = ""
## Why the reply ended: "stop", "length", "cancelled", "filtered", "error" (empty while streaming
## or when the reply failed before it started).
var finish: String = ""
## The [code]reply.end[/code] message (empty until finished).
var info: Dictionary = {}
## Actions requested so far, each [code]{"name": String, "args": Dictionary}[/code].
var actions: Array[Dictionary] = []
## Emotes received so far.
var emotes: PackedStringArray = PackedStringArray()
## The [code]reply.audio[/code] frames received so far, in order.
var audio_frames: Array[Dictionary] = []
## What the server heard, for a reply to the player's speech (empty otherwise).
var transcript: String = ""
## True once the reply finished or failed.
var done: bool = false
## Empty unless the reply failed.
var error_code: String = ""
## Error text when the reply failed.
var error_message: String = ""
## The underlying request (null until it is sent).
var request: NPCBridgeRequest = null

var _cancel_wanted: bool = false
var _early_audio: Dictionary = {}  # seq -> a frame that came before the ones it follows
var _next_seq: int = 0
var _barge_in: bool = false


func _init(npc_id: String = "", player_text: String = "") -> void:
	npc = npc_id
	prompt = player_text


## True when the reply finished without failing (a cancelled reply counts as finished).
func is_ok() -> bool:
	return done and error_code.is_empty()


## Waits for the whole reply and returns this reply (at once when already done).
func wait() -> NPCReply:
	if not done:
		await completed
	return self


## Stops the reply: the server ends it with finish "cancelled" and the text so far.
## [param barge_in]: the player spoke over the NPC; the reply then keeps the text of the audio
## already sent (what the player heard).
func cancel(barge_in: bool = false) -> void:
	_cancel_wanted = true
	_barge_in = _barge_in or barge_in
	if request != null and not done:
		request.cancel(barge_in)


## Connects the reply to its request (called by [NPCSpeaker]).
func attach(sent: NPCBridgeRequest) -> void:
	request = sent
	sent.message_received.connect(_on_message)
	sent.finished.connect(_on_finished)
	if _cancel_wanted:
		sent.cancel(_barge_in)


## Ends the reply as failed before a request exists (e.g. the NPC could not be defined).
func fail(code: String, message: String) -> void:
	if done:
		return
	error_code = code
	error_message = message
	done = true
	failed.emit(code, message)
	completed.emit(self)


func _on_message(message: Dictionary) -> void:
	match str(message.get("type", "")):
		"reply.start":
			started.emit()
		"reply.delta":
			var piece := str(message.get("text", ""))
			text += piece
			delta_received.emit(piece)
		"action":
			var args: Dictionary = (
				message.get("args", {}) if message.get("args") is Dictionary else {}
			)
			var action_name := str(message.get("name", ""))
			actions.append({"name": action_name, "args": args})
			action_requested.emit(action_name, args)
		"reply.audio":
			# handed on in seq order: a frame that came early waits for those before it
			var seq: Variant = message.get("seq")
			_early_audio[seq if seq is int else _next_seq] = message
			while _early_audio.has(_next_seq):
				_add_audio(_early_audio[_next_seq])
				_early_audio.erase(_next_seq)
				_next_seq += 1
		"transcript":
			transcript = str(message.get("text", ""))
			transcript_received.emit(transcript)
		"emote":
			var emote := str(message.get("emote", ""))
			emotes.append(emote)
			emote_received.emit(emote)
		"reply.end":
			var rest: Array = _early_audio.keys()
			rest.sort()
			for seq: Variant in rest:
				_add_audio(_early_audio[seq])
			_early_audio.clear()
			text = str(message.get("text", text))
			finish = str(message.get("finish", ""))
			info = message


func _add_audio(frame: Dictionary) -> void:
	audio_frames.append(frame)
	audio_received.emit(frame)


func _on_finished(sent: NPCBridgeRequest) -> void:
	if not sent.is_ok():
		fail(sent.error_code, sent.error_message)
		return
	done = true
	finished.emit(text, info)
	completed.emit(self)

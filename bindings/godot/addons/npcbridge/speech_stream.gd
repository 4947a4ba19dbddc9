class_name NPCSpeechStream
extends RefCounted
## One chunked utterance of the player (push-to-talk): [code]speech.start[/code] went out as
## [member request]; [method chunk] sends each piece of audio as a [code]speech.chunk[/code],
## [method finish] the [code]speech.end[/code]. The server then answers [code]transcript[/code]
## and the reply on [member request], as for a [code]say[/code].
## [codeblock]
## var stream := NPCBridge.speech_start("blacksmith", "p1", {"sample_rate": 44100})
## stream.chunk(pcm16_bytes)  # as the player talks
## stream.finish()
## await stream.request.wait()
## [/codeblock]

## The [code]speech.start[/code] request: the transcript and the reply arrive on it.
var request: NPCBridgeRequest = null
## Chunks sent so far (the next chunk's [code]seq[/code]).
var seq: int = 0
## True once [method finish] was called.
var ended: bool = false

var _protocol: NPCBridgeProtocol = null
var _held: Array[Dictionary] = []  # messages made before speech.start went out


## Opens an utterance of [param player] to [param npc]: [param fields] are those of a
## [code]say[/code] ([code]urgency[/code], [code]voice[/code], [code]context[/code] ...) and of
## the audio ([code]format[/code]: [code]"pcm16"[/code] (default) or [code]"wav"[/code],
## [code]sample_rate[/code] (default 16000), [code]channels[/code] (default 1)).
static func open(
	protocol: NPCBridgeProtocol, npc: String, player: String, fields: Dictionary = {}
) -> NPCSpeechStream:
	var stream := NPCSpeechStream.new()
	stream._protocol = protocol
	stream.request = protocol.request("speech.start", audio_fields(npc, player, fields))
	return stream


## The fields of a [code]speech[/code] / [code]speech.start[/code]: [param fields] with the
## NPC, the player and the audio format filled in.
static func audio_fields(npc: String, player: String, fields: Dictionary) -> Dictionary:
	var message := fields.duplicate(true)
	message["npc"] = npc
	message["player"] = player
	if not message.has("format"):
		message["format"] = "pcm16"
	if not message.has("sample_rate"):
		message["sample_rate"] = 16000
	if not message.has("channels"):
		message["channels"] = 1
	return message


## Sends the next piece of audio (empty pieces are skipped). Held back until the
## [code]speech.start[/code] has gone out (e.g. while connecting).
func chunk(audio: PackedByteArray) -> Error:
	if ended or request.done:
		return ERR_ALREADY_EXISTS
	if audio.is_empty():
		return OK
	_held.append({"type": "speech.chunk", "id": request.id, "seq": seq, "audio": audio})
	seq += 1
	return flush()


## The player stopped talking: sends [code]speech.end[/code] (after any held chunk).
func finish() -> Error:
	if ended:
		return OK
	ended = true
	if request.done:
		return ERR_ALREADY_EXISTS
	_held.append({"type": "speech.end", "id": request.id})
	return flush()


## Sends what was held back, once the [code]speech.start[/code] is out. Returns the first send
## error (the message is then dropped: the server ends the utterance if it misses a chunk).
func flush() -> Error:
	if request.done:
		_held.clear()
		return ERR_ALREADY_EXISTS
	if not _protocol.router.has_id(request.id):
		return OK
	var result := OK
	for message in _held:
		var error := _protocol.send_message(message)
		if error != OK and result == OK:
			result = error
	_held.clear()
	if result == OK:
		request.last_activity_msec = Time.get_ticks_msec()
	return result

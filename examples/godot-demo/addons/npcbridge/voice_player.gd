class_name NPCVoicePlayer
extends RefCounted
## Plays [code]reply.audio[/code] frames one after another with no gap, through an
## [AudioStreamPlayer], [AudioStreamPlayer2D] or [AudioStreamPlayer3D]: their samples are pushed
## into an [AudioStreamGenerator] as it makes room. It knows which frame is playing and how open
## the mouth is. [NPCSpeaker] owns one; a game can use one directly:
## [codeblock]
## var voice := NPCVoicePlayer.new($Blacksmith/AudioStreamPlayer3D)
## voice.mouth_changed.connect(func(openness: float) -> void: jaw.rotation.x = openness * 0.4)
## reply.audio_received.connect(voice.push)
## reply.completed.connect(func(_r: NPCReply) -> void: voice.close())
## # every frame: voice.process()
## [/codeblock]

## The first frame of a speech started playing.
signal speech_started
## The speech ended: everything played ([param interrupted] false) or [method stop] was called.
signal speech_finished(interrupted: bool)
## A frame started playing (its [code]text[/code] is what is being said).
signal frame_started(frame: Dictionary)
## The mouth openness (0..1) changed, following the playing frame's envelope.
signal mouth_changed(openness: float)

## Seconds of audio the generator holds ahead of what is heard.
const BUFFER_LENGTH_S := 0.5

## The AudioStreamPlayer / 2D / 3D that plays.
var player: Node = null
## Frames of the speech so far, in order.
var frames: Array[Dictionary] = []
## Frames that have started playing.
var frames_started: int = 0

var _playback: AudioStreamGeneratorPlayback = null
var _rate: int = 0
var _capacity: int = 0
var _starts: PackedInt64Array = PackedInt64Array()  # first sample of each frame
var _pending: PackedVector2Array = PackedVector2Array()  # samples not in the generator yet
var _pushed: int = 0  # samples given to the generator
var _total: int = 0  # samples of every frame
var _speaking: bool = false
var _closed: bool = false
var _mouth: float = 0.0


func _init(audio_player: Node = null) -> void:
	player = audio_player


## Adds a frame (format pcm16) to the speech; the first one starts it.
func push(frame: Dictionary) -> void:
	if str(frame.get("format", "pcm16")) != "pcm16" or NPCVoice.sample_count(frame) == 0:
		return
	if player == null or not player.has_method(&"get_stream_playback"):
		push_error("NPCVoicePlayer: needs an AudioStreamPlayer, AudioStreamPlayer2D or 3D")
		return
	var samples := NPCVoice.frame_samples(frame)
	if not _speaking:
		_begin(NPCVoice.sample_rate(frame))
	elif NPCVoice.sample_rate(frame) != _rate:
		samples = _resampled(samples, NPCVoice.sample_rate(frame), _rate)
	_closed = false
	_starts.append(_total)
	frames.append(frame)
	_total += samples.size()
	_pending.append_array(samples)
	process()


## No more frames will come for this speech: it finishes once they have played.
func close() -> void:
	_closed = true
	process()


## Stops at once (barge-in): what was not heard is dropped.
func stop() -> void:
	if not _speaking:
		return
	_speaking = false
	player.call(&"stop")
	_pending = PackedVector2Array()
	_set_mouth(0.0)
	speech_finished.emit(true)


## True from the first frame until the speech finished or was stopped.
func is_speaking() -> bool:
	return _speaking


## Seconds of this speech heard so far.
func get_position() -> float:
	return float(_played()) / _rate if _rate > 0 else 0.0


## Seconds of audio in this speech's frames.
func get_length() -> float:
	return float(_total) / _rate if _rate > 0 else 0.0


## The mouth openness now (0..1).
func get_mouth() -> float:
	return _mouth


## Feeds the generator and follows the playing position. Call it every frame.
func process() -> void:
	if not _speaking:
		return
	var room := _playback.get_frames_available()
	if room > 0 and not _pending.is_empty():
		var count := mini(room, _pending.size())
		_playback.push_buffer(_pending.slice(0, count))
		_pending = _pending.slice(count)
		_pushed += count
	var played := _played()
	while frames_started < frames.size() and _starts[frames_started] <= played:
		frames_started += 1
		frame_started.emit(frames[frames_started - 1])
	if frames_started > 0:
		var index := frames_started - 1
		_set_mouth(NPCVoice.mouth_at(frames[index], float(played - _starts[index]) / _rate))
	if _closed and _pending.is_empty() and played >= _total:
		_speaking = false
		player.call(&"stop")
		_set_mouth(0.0)
		speech_finished.emit(false)


func _begin(rate: int) -> void:
	var generator := AudioStreamGenerator.new()
	generator.mix_rate = rate
	generator.buffer_length = BUFFER_LENGTH_S
	player.set(&"stream", generator)
	player.call(&"play")
	_playback = player.call(&"get_stream_playback") as AudioStreamGeneratorPlayback
	_capacity = _playback.get_frames_available()
	_rate = rate
	frames.clear()
	frames_started = 0
	_starts = PackedInt64Array()
	_pending = PackedVector2Array()
	_pushed = 0
	_total = 0
	_speaking = true
	speech_started.emit()


# Samples heard: those pushed, less those still waiting in the generator.
func _played() -> int:
	if _playback == null:
		return 0
	return maxi(0, _pushed - (_capacity - _playback.get_frames_available()))


func _set_mouth(openness: float) -> void:
	if openness != _mouth:
		_mouth = openness
		mouth_changed.emit(openness)


# Linear resampling, for a frame at another rate than the speech's first one.
static func _resampled(samples: PackedVector2Array, from: int, to: int) -> PackedVector2Array:
	var count := int(samples.size() * float(to) / from)
	var out := PackedVector2Array()
	out.resize(count)
	for i in count:
		var at := i * float(from) / to
		var j := mini(int(at), samples.size() - 1)
		var k := mini(j + 1, samples.size() - 1)
		out[i] = samples[j].lerp(samples[k], at - j)
	return out

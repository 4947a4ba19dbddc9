class_name NPCVoice
extends RefCounted
## The audio of the voice messages, with nothing playing yet: a [code]reply.audio[/code] frame
## as samples or as an [AudioStreamWAV], its mouth-openness envelope, and the player's recorded
## samples as the PCM16 bytes a [code]speech[/code] carries. [NPCVoicePlayer] and
## [NPCVoiceCapture] are built on it.
## [codeblock]
## var stream := NPCVoice.frame_to_wav(frame)  # e.g. for an AudioStreamPlayer of your own
## print(stream.get_length(), " s: ", frame["text"])
## [/codeblock]


## The PCM16 bytes of a frame's [code]audio[/code] (empty when it has none).
static func audio_bytes(frame: Dictionary) -> PackedByteArray:
	var audio: Variant = frame.get("audio")
	return audio if audio is PackedByteArray else PackedByteArray()


## Sample rate of a frame (24000 when it does not say).
static func sample_rate(frame: Dictionary) -> int:
	var rate: Variant = frame.get("sample_rate")
	return rate if rate is int and rate > 0 else 24000


## Channels of a frame (1 when it does not say).
static func channels(frame: Dictionary) -> int:
	var count: Variant = frame.get("channels")
	return count if count is int and count > 0 else 1


## Samples per channel in a frame.
static func sample_count(frame: Dictionary) -> int:
	return audio_bytes(frame).size() / (2 * channels(frame))


## Seconds of audio in a frame (from its bytes; [code]duration_ms[/code] rounds).
static func duration(frame: Dictionary) -> float:
	return float(sample_count(frame)) / sample_rate(frame)


## A frame's samples as stereo frames -1..1 (a mono frame on both sides), for an
## [AudioStreamGeneratorPlayback].
static func frame_samples(frame: Dictionary) -> PackedVector2Array:
	var pcm := audio_bytes(frame)
	var stereo := channels(frame) >= 2
	var step := 2 * channels(frame)
	var count := sample_count(frame)
	var out := PackedVector2Array()
	out.resize(count)
	for i in count:
		var left := pcm.decode_s16(i * step) / 32768.0
		var right := pcm.decode_s16(i * step + 2) / 32768.0 if stereo else left
		out[i] = Vector2(left, right)
	return out


## A frame as an [AudioStreamWAV] (16-bit, the frame's rate and channels): its
## [method AudioStream.get_length] is the frame's duration.
static func frame_to_wav(frame: Dictionary) -> AudioStreamWAV:
	var wav := AudioStreamWAV.new()
	wav.format = AudioStreamWAV.FORMAT_16_BITS
	wav.mix_rate = sample_rate(frame)
	wav.stereo = channels(frame) == 2
	var pcm := audio_bytes(frame)
	wav.data = pcm.slice(0, sample_count(frame) * 2 * channels(frame))
	return wav


## Mouth openness 0..1 [param seconds] into a frame, from its [code]mouth[/code] envelope (one
## byte per 1/[code]mouth_hz[/code] s); 0 outside it or when there is none.
static func mouth_at(frame: Dictionary, seconds: float) -> float:
	var mouth: Variant = frame.get("mouth")
	if not mouth is PackedByteArray or seconds < 0.0:
		return 0.0
	var hz: Variant = frame.get("mouth_hz")
	var index := int(seconds * (hz if hz is int and hz > 0 else 50))
	var envelope: PackedByteArray = mouth
	return envelope[index] / 255.0 if index < envelope.size() else 0.0


## Little-endian 16-bit mono bytes of recorded stereo frames (the two sides averaged, clipped).
static func pcm16_mono(recorded: PackedVector2Array) -> PackedByteArray:
	var out := PackedByteArray()
	out.resize(recorded.size() * 2)
	for i in recorded.size():
		var value := clampf((recorded[i].x + recorded[i].y) * 0.5, -1.0, 1.0)
		out.encode_s16(i * 2, int(roundf(value * 32767.0)))
	return out

class_name NPCBridgeMsgPack
extends RefCounted
## MessagePack encoding and decoding for the npcbridge wire protocol.
##
## Encoding is canonical, byte for byte what the server and every other client write: map keys
## sorted by their UTF-8 bytes (not UTF-16 code units: the orders differ beyond the BMP),
## integers and strings in their smallest form, every [float] as float64 (a whole-number one
## too: [code]2.0[/code] is [code]cb 40 00 ...[/code], never [code]02[/code]), [PackedByteArray]
## as bin, and a map entry whose value is null left out (an unset field; a null inside an array
## stays). Decoding ([NPCBridgeMsgPackDecoder]) reads every msgpack form the protocol can carry.
## Strings round-trip exactly, a leading U+FEFF included; a str holding U+0000 (which a Godot
## [String] cannot hold) decodes to a [NPCBridgeMsgPack.RawString].
## Nothing here raises or prints: both directions return a [NPCBridgeMsgPack.Result] whose
## [member Result.error] is empty on success.
## [codeblock]
## var packed := NPCBridgeMsgPack.encode({"type": "ping", "id": 1})
## var decoded := NPCBridgeMsgPack.decode(packed.value)
## if decoded.is_ok():
##     print(decoded.value["type"])
## [/codeblock]

## Deepest nesting of arrays and maps accepted in either direction.
const MAX_DEPTH := 64


## Encodes [param value] canonically. Supported: null, bool, int, float, String, StringName,
## PackedByteArray (bin), Array and packed arrays, Dictionary, [NPCBridgeMsgPack.UInt64],
## [NPCBridgeMsgPack.RawString] (str).
## Returns a [NPCBridgeMsgPack.Result] holding a [PackedByteArray].
static func encode(value: Variant) -> Result:
	var out := StreamPeerBuffer.new()
	out.big_endian = true
	var error := _write(out, value, 0)
	if not error.is_empty():
		return Result.new(null, error)
	return Result.new(out.data_array)


## Decodes exactly one msgpack value from [param data]. Bad, truncated or trailing bytes give a
## [NPCBridgeMsgPack.Result] with an error, never a crash.
static func decode(data: PackedByteArray) -> Result:
	return NPCBridgeMsgPackDecoder.decode(data)


## True when [param data] is well-formed UTF-8 (see [method NPCBridgeUTF8.is_valid]).
static func is_valid_utf8(data: PackedByteArray) -> bool:
	return NPCBridgeUTF8.is_valid(data)


static func _write(out: StreamPeerBuffer, value: Variant, depth: int) -> String:
	if depth > MAX_DEPTH:
		return "value nests deeper than %d levels" % MAX_DEPTH
	match typeof(value):
		TYPE_NIL:
			out.put_u8(0xC0)
		TYPE_BOOL:
			out.put_u8(0xC3 if value else 0xC2)
		TYPE_INT:
			_write_int(out, value)
		TYPE_FLOAT:
			out.put_u8(0xCB)
			out.put_double(value)
		TYPE_STRING, TYPE_STRING_NAME:
			_write_str(out, _utf8(value))
		TYPE_PACKED_BYTE_ARRAY:
			_write_bin(out, value)
		TYPE_DICTIONARY:
			return _write_map(out, value, depth)
		TYPE_ARRAY, TYPE_PACKED_INT32_ARRAY, TYPE_PACKED_INT64_ARRAY:
			return _write_array(out, Array(value), depth)
		TYPE_PACKED_FLOAT32_ARRAY, TYPE_PACKED_FLOAT64_ARRAY, TYPE_PACKED_STRING_ARRAY:
			return _write_array(out, Array(value), depth)
		TYPE_OBJECT:
			if value is UInt64:
				out.put_u8(0xCF)
				out.put_64((value as UInt64).bits)
			elif value is RawString:
				var raw := (value as RawString).bytes
				if not is_valid_utf8(raw):
					return "a RawString must hold valid UTF-8"
				_write_str(out, raw)
			else:
				return "cannot encode an Object as msgpack"
		_:
			return "cannot encode a %s as msgpack" % type_string(typeof(value))
	return ""


static func _write_int(out: StreamPeerBuffer, n: int) -> void:
	if n >= 0:
		if n < 0x80:
			out.put_u8(n)
		elif n <= 0xFF:
			out.put_u8(0xCC)
			out.put_u8(n)
		elif n <= 0xFFFF:
			out.put_u8(0xCD)
			out.put_u16(n)
		elif n <= 0xFFFFFFFF:
			out.put_u8(0xCE)
			out.put_u32(n)
		else:
			out.put_u8(0xCF)
			out.put_64(n)
	elif n >= -32:
		out.put_u8(n & 0xFF)
	elif n >= -0x80:
		out.put_u8(0xD0)
		out.put_8(n)
	elif n >= -0x8000:
		out.put_u8(0xD1)
		out.put_16(n)
	elif n >= -0x80000000:
		out.put_u8(0xD2)
		out.put_32(n)
	else:
		out.put_u8(0xD3)
		out.put_64(n)


## The UTF-8 bytes of a map key or string value ([String], [StringName], [RawString], others
## through [method @GlobalScope.str]).
static func _utf8(value: Variant) -> PackedByteArray:
	if value is RawString:
		return (value as RawString).bytes
	return str(value).to_utf8_buffer()


static func _write_str(out: StreamPeerBuffer, raw: PackedByteArray) -> void:
	var n := raw.size()
	if n < 32:
		out.put_u8(0xA0 | n)
	elif n <= 0xFF:
		out.put_u8(0xD9)
		out.put_u8(n)
	elif n <= 0xFFFF:
		out.put_u8(0xDA)
		out.put_u16(n)
	else:
		out.put_u8(0xDB)
		out.put_u32(n)
	out.put_data(raw)


static func _write_bin(out: StreamPeerBuffer, raw: PackedByteArray) -> void:
	var n := raw.size()
	if n <= 0xFF:
		out.put_u8(0xC4)
		out.put_u8(n)
	elif n <= 0xFFFF:
		out.put_u8(0xC5)
		out.put_u16(n)
	else:
		out.put_u8(0xC6)
		out.put_u32(n)
	out.put_data(raw)


static func _write_len(
	out: StreamPeerBuffer, n: int, fix: int, fix_limit: int, code16: int, code32: int
) -> void:
	if n < fix_limit:
		out.put_u8(fix | n)
	elif n <= 0xFFFF:
		out.put_u8(code16)
		out.put_u16(n)
	else:
		out.put_u8(code32)
		out.put_u32(n)


static func _write_array(out: StreamPeerBuffer, items: Array, depth: int) -> String:
	_write_len(out, items.size(), 0x90, 16, 0xDC, 0xDD)
	for item: Variant in items:
		var error := _write(out, item, depth + 1)
		if not error.is_empty():
			return error
	return ""


static func _write_map(out: StreamPeerBuffer, map: Dictionary, depth: int) -> String:
	# Canonical order: keys sorted by their UTF-8 bytes. Hex strings of those bytes sort the same.
	# A null value is an unset field: canonical encoders leave the entry out.
	var order: Array = []
	for key: Variant in map:
		if typeof(map[key]) != TYPE_NIL:
			order.append([_utf8(key).hex_encode(), key])
	order.sort_custom(func(a: Array, b: Array) -> bool: return a[0] < b[0])
	_write_len(out, order.size(), 0x80, 16, 0xDE, 0xDF)
	for pair: Array in order:
		var error := _write(out, pair[1], depth + 1)
		if error.is_empty():
			error = _write(out, map[pair[1]], depth + 1)
		if not error.is_empty():
			return error
	return ""


## The outcome of [method encode] or [method decode]: a value, or an error message.
class Result:
	extends RefCounted
	## The encoded bytes ([PackedByteArray]) or the decoded value; null on error.
	var value: Variant = null
	## Empty on success, otherwise a short description of what was wrong.
	var error: String = ""

	func _init(result_value: Variant = null, result_error: String = "") -> void:
		value = result_value
		error = result_error

	## True when there was no error.
	func is_ok() -> bool:
		return error.is_empty()


## An unsigned 64-bit integer above the largest [int] (2^63 - 1), which GDScript cannot hold.
## The decoder returns one for such values and the encoder writes it back as uint64.
class UInt64:
	extends RefCounted
	## The 64 bits of the value, as a (negative) signed [int].
	var bits: int = 0

	func _init(value_bits: int = 0) -> void:
		bits = value_bits

	## The value in decimal.
	func _to_string() -> String:
		# Unsigned value = (bits >>> 1) * 2 + (bits & 1), done in decimal.
		var half := (bits >> 1) & 0x7FFFFFFFFFFFFFFF
		var low := half % 5 * 2 + (bits & 1)
		var high := half / 5
		if low >= 10:
			high += 1
			low -= 10
		return "%d%d" % [high, low] if high > 0 else str(low)


## A msgpack str kept as its UTF-8 bytes: what the decoder returns for a string holding U+0000,
## which a Godot [String] cannot hold (the engine turns it into U+FFFD). The encoder writes it
## back unchanged, so such a string round-trips; build one to send a U+0000 exactly.
## [codeblock]
## var nul := NPCBridgeMsgPack.RawString.new(PackedByteArray([0x61, 0x00, 0x62]))  # "a\0b"
## [/codeblock]
class RawString:
	extends RefCounted
	## The string's UTF-8 bytes.
	var bytes: PackedByteArray = PackedByteArray()

	func _init(utf8_bytes: PackedByteArray = PackedByteArray()) -> void:
		bytes = utf8_bytes

	## The text with each U+0000 shown as U+FFFD (for display; [member bytes] is exact).
	func _to_string() -> String:
		var parts: PackedStringArray = []
		var start := 0
		var at := bytes.find(0)
		while at >= 0:
			parts.append(NPCBridgeUTF8.to_text(bytes.slice(start, at)))
			start = at + 1
			at = bytes.find(0, start)
		parts.append(NPCBridgeUTF8.to_text(bytes.slice(start)))
		return String.chr(0xFFFD).join(parts)

class_name NPCBridgeMsgPack
extends RefCounted
## MessagePack encoding and decoding for the npcbridge wire protocol.
##
## Encoding is canonical, byte for byte what the server and every other client write: map keys
## sorted by their UTF-8 bytes, integers and strings in their smallest form, floats always as
## float64, [PackedByteArray] as bin. Decoding reads every msgpack form the protocol can carry.
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
	var input := StreamPeerBuffer.new()
	input.big_endian = true
	input.data_array = data
	var result := _read(input, 0)
	if result.is_ok() and input.get_available_bytes() > 0:
		return Result.new(null, "trailing bytes after one value")
	return result


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
	var order: Array = []
	for key: Variant in map:
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


static func _read(input: StreamPeerBuffer, depth: int) -> Result:
	if depth > MAX_DEPTH:
		return Result.new(null, "value nests deeper than %d levels" % MAX_DEPTH)
	if input.get_available_bytes() < 1:
		return Result.new(null, "truncated input" if input.get_size() > 0 else "empty input")
	var b := input.get_u8()
	if b <= 0x7F:
		return Result.new(b)
	if b >= 0xE0:
		return Result.new(b - 0x100)
	if b >= 0xA0 and b <= 0xBF:
		return _read_str(input, b & 0x1F)
	if b >= 0x90 and b <= 0x9F:
		return _read_array(input, b & 0x0F, depth)
	if b >= 0x80 and b <= 0x8F:
		return _read_map(input, b & 0x0F, depth)
	match b:
		0xC0:
			return Result.new(null)
		0xC2:
			return Result.new(false)
		0xC3:
			return Result.new(true)
		0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3:
			return _read_number(input, b)
		0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6, 0xDC, 0xDD, 0xDE, 0xDF:
			var width: int = {0: 1, 1: 2, 2: 4}[_width_index(b)]
			if input.get_available_bytes() < width:
				return Result.new(null, "truncated input")
			var n: int = (
				input.get_u8()
				if width == 1
				else (input.get_u16() if width == 2 else input.get_u32())
			)
			if b in [0xD9, 0xDA, 0xDB]:
				return _read_str(input, n)
			if b in [0xC4, 0xC5, 0xC6]:
				return _read_bin(input, n)
			if b in [0xDC, 0xDD]:
				return _read_array(input, n, depth)
			return _read_map(input, n, depth)
	if b == 0xC1:
		return Result.new(null, "reserved type byte 0xc1")
	return Result.new(null, "unsupported type byte 0x%02x (ext types are not used)" % b)


static func _width_index(b: int) -> int:
	match b:
		0xD9, 0xC4:
			return 0
		0xDA, 0xC5, 0xDC, 0xDE:
			return 1
	return 2


static func _u64(bits: int) -> Variant:
	return bits if bits >= 0 else UInt64.new(bits)


static func _read_number(input: StreamPeerBuffer, b: int) -> Result:
	var size: int = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}.get(b, 0)
	if size == 0:
		size = 1 << (b - 0xD0)
	if input.get_available_bytes() < size:
		return Result.new(null, "truncated input")
	match b:
		0xCA:
			return Result.new(float(input.get_float()))
		0xCB:
			return Result.new(input.get_double())
		0xCC:
			return Result.new(input.get_u8())
		0xCD:
			return Result.new(input.get_u16())
		0xCE:
			return Result.new(input.get_u32())
		0xCF:
			return Result.new(_u64(input.get_64()))
		0xD0:
			return Result.new(input.get_8())
		0xD1:
			return Result.new(input.get_16())
		0xD2:
			return Result.new(input.get_32())
	return Result.new(input.get_64())


static func _take(input: StreamPeerBuffer, n: int) -> Variant:
	if n < 0 or input.get_available_bytes() < n:
		return null
	if n == 0:
		return PackedByteArray()
	var got: Array = input.get_data(n)
	return got[1] as PackedByteArray


static func _read_str(input: StreamPeerBuffer, n: int) -> Result:
	var raw: Variant = _take(input, n)
	if raw == null:
		return Result.new(null, "truncated input: string runs past the end")
	var bytes: PackedByteArray = raw
	if not is_valid_utf8(bytes):
		return Result.new(null, "invalid UTF-8 in a string")
	if bytes.has(0):
		return Result.new(RawString.new(bytes))
	return Result.new(NPCBridgeUTF8.to_text(bytes))


static func _read_bin(input: StreamPeerBuffer, n: int) -> Result:
	var raw: Variant = _take(input, n)
	if raw == null:
		return Result.new(null, "truncated input: bin runs past the end")
	return Result.new(raw)


static func _read_array(input: StreamPeerBuffer, n: int, depth: int) -> Result:
	if n > input.get_available_bytes():
		return Result.new(null, "truncated input: array runs past the end")
	var items: Array = []
	for i in n:
		var item := _read(input, depth + 1)
		if not item.is_ok():
			return item
		items.append(item.value)
	return Result.new(items)


static func _read_map(input: StreamPeerBuffer, n: int, depth: int) -> Result:
	if n * 2 > input.get_available_bytes():
		return Result.new(null, "truncated input: map runs past the end")
	var map := {}
	for i in n:
		var key := _read(input, depth + 1)
		if not key.is_ok():
			return key
		var item := _read(input, depth + 1)
		if not item.is_ok():
			return item
		map[key.value] = item.value
	return Result.new(map)

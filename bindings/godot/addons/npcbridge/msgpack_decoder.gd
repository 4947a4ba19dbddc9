class_name NPCBridgeMsgPackDecoder
extends RefCounted
## The msgpack decoder behind [method NPCBridgeMsgPack.decode]: reads every msgpack form the
## protocol can carry (ext types are refused), from untrusted bytes.
##
## Strings are checked as UTF-8 and kept exact ([NPCBridgeUTF8]); one holding U+0000 becomes a
## [NPCBridgeMsgPack.RawString], a uint64 above 2^63 - 1 a [NPCBridgeMsgPack.UInt64]. Nesting is
## bounded by [constant NPCBridgeMsgPack.MAX_DEPTH] while reading, and every count is checked
## against the bytes left before anything is allocated. Nothing here raises or prints.


## Decodes exactly one msgpack value from [param data]. Bad, truncated or trailing bytes give a
## [NPCBridgeMsgPack.Result] with an error, never a crash.
static func decode(data: PackedByteArray) -> NPCBridgeMsgPack.Result:
	var input := StreamPeerBuffer.new()
	input.big_endian = true
	input.data_array = data
	var result := _read(input, 0)
	if result.is_ok() and input.get_available_bytes() > 0:
		return _fail("trailing bytes after one value")
	return result


static func _ok(value: Variant) -> NPCBridgeMsgPack.Result:
	return NPCBridgeMsgPack.Result.new(value)


static func _fail(why: String) -> NPCBridgeMsgPack.Result:
	return NPCBridgeMsgPack.Result.new(null, why)


static func _read(input: StreamPeerBuffer, depth: int) -> NPCBridgeMsgPack.Result:
	if depth > NPCBridgeMsgPack.MAX_DEPTH:
		return _fail("value nests deeper than %d levels" % NPCBridgeMsgPack.MAX_DEPTH)
	if input.get_available_bytes() < 1:
		return _fail("truncated input" if input.get_size() > 0 else "empty input")
	var b := input.get_u8()
	if b <= 0x7F:
		return _ok(b)
	if b >= 0xE0:
		return _ok(b - 0x100)
	if b >= 0xA0 and b <= 0xBF:
		return _read_str(input, b & 0x1F)
	if b >= 0x90 and b <= 0x9F:
		return _read_array(input, b & 0x0F, depth)
	if b >= 0x80 and b <= 0x8F:
		return _read_map(input, b & 0x0F, depth)
	match b:
		0xC0:
			return _ok(null)
		0xC2:
			return _ok(false)
		0xC3:
			return _ok(true)
		0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3:
			return _read_number(input, b)
		0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6, 0xDC, 0xDD, 0xDE, 0xDF:
			var width: int = {0: 1, 1: 2, 2: 4}[_width_index(b)]
			if input.get_available_bytes() < width:
				return _fail("truncated input")
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
		return _fail("reserved type byte 0xc1")
	return _fail("unsupported type byte 0x%02x (ext types are not used)" % b)


static func _width_index(b: int) -> int:
	match b:
		0xD9, 0xC4:
			return 0
		0xDA, 0xC5, 0xDC, 0xDE:
			return 1
	return 2


static func _u64(bits: int) -> Variant:
	return bits if bits >= 0 else NPCBridgeMsgPack.UInt64.new(bits)


static func _read_number(input: StreamPeerBuffer, b: int) -> NPCBridgeMsgPack.Result:
	var size: int = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}.get(b, 0)
	if size == 0:
		size = 1 << (b - 0xD0)
	if input.get_available_bytes() < size:
		return _fail("truncated input")
	match b:
		0xCA:
			return _ok(float(input.get_float()))
		0xCB:
			return _ok(input.get_double())
		0xCC:
			return _ok(input.get_u8())
		0xCD:
			return _ok(input.get_u16())
		0xCE:
			return _ok(input.get_u32())
		0xCF:
			return _ok(_u64(input.get_64()))
		0xD0:
			return _ok(input.get_8())
		0xD1:
			return _ok(input.get_16())
		0xD2:
			return _ok(input.get_32())
	return _ok(input.get_64())


static func _take(input: StreamPeerBuffer, n: int) -> Variant:
	if n < 0 or input.get_available_bytes() < n:
		return null
	if n == 0:
		return PackedByteArray()
	var got: Array = input.get_data(n)
	return got[1] as PackedByteArray


static func _read_str(input: StreamPeerBuffer, n: int) -> NPCBridgeMsgPack.Result:
	var raw: Variant = _take(input, n)
	if raw == null:
		return _fail("truncated input: string runs past the end")
	var bytes: PackedByteArray = raw
	if not NPCBridgeUTF8.is_valid(bytes):
		return _fail("invalid UTF-8 in a string")
	if bytes.has(0):
		return _ok(NPCBridgeMsgPack.RawString.new(bytes))
	return _ok(NPCBridgeUTF8.to_text(bytes))


static func _read_bin(input: StreamPeerBuffer, n: int) -> NPCBridgeMsgPack.Result:
	var raw: Variant = _take(input, n)
	if raw == null:
		return _fail("truncated input: bin runs past the end")
	return _ok(raw)


static func _read_array(input: StreamPeerBuffer, n: int, depth: int) -> NPCBridgeMsgPack.Result:
	if n > input.get_available_bytes():
		return _fail("truncated input: array runs past the end")
	var items: Array = []
	for i in n:
		var item := _read(input, depth + 1)
		if not item.is_ok():
			return item
		items.append(item.value)
	return _ok(items)


static func _read_map(input: StreamPeerBuffer, n: int, depth: int) -> NPCBridgeMsgPack.Result:
	if n * 2 > input.get_available_bytes():
		return _fail("truncated input: map runs past the end")
	var map := {}
	for i in n:
		var key := _read(input, depth + 1)
		if not key.is_ok():
			return key
		var item := _read(input, depth + 1)
		if not item.is_ok():
			return item
		map[key.value] = item.value
	return _ok(map)

class_name NPCBridgeUTF8
extends RefCounted
## UTF-8 checks and decoding for the msgpack codec ([NPCBridgeMsgPack]), stricter and more exact
## than the engine's own: no overlong forms or surrogates are accepted, and a leading U+FEFF is
## kept (the engine's UTF-8 reader drops one).


## True when [param data] is well-formed UTF-8 (no overlong forms, surrogates or values past
## U+10FFFF).
static func is_valid(data: PackedByteArray) -> bool:
	var i := 0
	var n := data.size()
	while i < n:
		var b := data[i]
		if b < 0x80:
			i += 1
			continue
		var extra := 0
		var cp := 0
		var minimum := 0
		if b >= 0xC2 and b <= 0xDF:
			extra = 1
			cp = b & 0x1F
			minimum = 0x80
		elif b >= 0xE0 and b <= 0xEF:
			extra = 2
			cp = b & 0x0F
			minimum = 0x800
		elif b >= 0xF0 and b <= 0xF4:
			extra = 3
			cp = b & 0x07
			minimum = 0x10000
		else:
			return false
		if i + extra >= n:
			return false
		for k in range(1, extra + 1):
			var c := data[i + k]
			if c & 0xC0 != 0x80:
				return false
			cp = (cp << 6) | (c & 0x3F)
		if cp < minimum or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF):
			return false
		i += extra + 1
	return true


## The [String] of valid UTF-8 [param utf8] that holds no U+0000 (a Godot [String] cannot
## hold one), a leading U+FEFF kept.
static func to_text(utf8: PackedByteArray) -> String:
	var text := utf8.get_string_from_utf8()
	if utf8.size() >= 3 and utf8[0] == 0xEF and utf8[1] == 0xBB and utf8[2] == 0xBF:
		text = String.chr(0xFEFF) + text
	return text

extends NPCBTestCase
## The GDScript msgpack codec against the shared golden vectors in tests/vectors/.

# gdlint: disable=max-returns

const MsgPack := preload("res://addons/npcbridge/msgpack.gd")
const VECTORS := "res://vectors/"


func test_every_message_vector_decodes_and_reencodes_byte_exactly() -> void:
	var index: Dictionary = _json("index.json")
	var kinds: Array = index["messages"]
	check(kinds.size() >= 20, "index lists the message kinds")
	for kind: String in kinds:
		_check_message_vector(kind, kind)
	# Variants: more vectors of a type already listed (e.g. an error that refuses a message).
	var variants: Array = index.get("variants", [])
	check(variants.size() >= 2, "index lists the variants")
	for variant: Dictionary in variants:
		_check_message_vector(variant["name"], variant["type"])


func test_codec_cases() -> void:
	var cases: Array = _json("codec.json")["cases"]
	check(cases.size() >= 40, "codec.json has its cases")
	for case: Dictionary in cases:
		var name: String = case["name"]
		var decoded := MsgPack.decode(String(case["hex"]).hex_decode())
		if not check(decoded.is_ok(), "%s decodes: %s" % [name, decoded.error]):
			continue
		check(
			_tagged_equal(decoded.value, case["value"]), "%s value: got %s" % [name, decoded.value]
		)
		var encoded := MsgPack.encode(decoded.value)
		if check(encoded.is_ok(), "%s encodes: %s" % [name, encoded.error]):
			check_eq(
				(encoded.value as PackedByteArray).hex_encode(),
				case["canonical_hex"],
				"%s canonical bytes" % name
			)


func test_canonical_vectors() -> void:
	# What a canonical encoder writes for a message: whole-number floats as float64, unset (null)
	# fields left out, map keys beyond the BMP in UTF-8 byte order.
	var doc: Dictionary = _json("canonical.json")
	var cases: Array = doc["cases"]
	var float_fields: Array = doc["float_fields"]
	check(cases.size() >= 5, "canonical.json has its cases")
	check("cost_usd" in float_fields and "temperature" in float_fields, "float_fields listed")
	for case: Dictionary in cases:
		var name: String = case["name"]
		var hex: String = case["hex"]
		var encoded := MsgPack.encode(untag(case["message"]))
		if check(encoded.is_ok(), "%s encodes: %s" % [name, encoded.error]):
			check_eq((encoded.value as PackedByteArray).hex_encode(), hex, "%s: bytes" % name)
		var decoded := MsgPack.decode(hex.hex_decode())
		if not check(decoded.is_ok(), "%s decodes: %s" % [name, decoded.error]):
			continue
		var sent: Variant = _left_out(case["message"])
		check(_tagged_equal(decoded.value, sent), "%s: decoded %s" % [name, decoded.value])
		check(_floats_are_floats(decoded.value, float_fields), "%s: protocol floats" % name)
		var again := MsgPack.encode(decoded.value)
		check_eq((again.value as PackedByteArray).hex_encode(), hex, "%s: decode, encode" % name)


func test_invalid_inputs_give_error_values() -> void:
	var cases: Array = _json("invalid.json")["cases"]
	check(cases.size() >= 10, "invalid.json has its cases")
	for case: Dictionary in cases:
		var decoded := MsgPack.decode(String(case["hex"]).hex_decode())
		check(not decoded.is_ok(), "%s is rejected" % case["name"])
		check(decoded.value == null, "%s gives no value" % case["name"])


func test_encoder_errors_and_canonical_forms() -> void:
	var node := Node2D.new()
	var bad := MsgPack.encode({"type": "x", "node": node})
	node.free()
	check(not bad.is_ok(), "an Object cannot be encoded")
	check(bad.error.contains("Object"), "the error names the type: " + bad.error)
	check(not MsgPack.encode(Vector2(1, 2)).is_ok(), "a Vector2 cannot be encoded")
	# Keys sort by UTF-8 bytes: "Z" (5a) < "a" (61) < "é" (c3 a9) < "標" (e6 a8 99).
	var sorted := MsgPack.encode({"標": 1, "é": 2, "a": 3, "Z": 4})
	check_eq(
		(sorted.value as PackedByteArray).hex_encode(),
		"84a15a04a16103a2c3a902a3e6a89901",
		"keys sorted by UTF-8 bytes"
	)
	# Beyond the BMP the orders differ: UTF-8 puts U+FF61 (ef bd a1) before U+1F600 (f0 9f 98 80),
	# UTF-16 code units the other way round (d83d < ff61).
	var astral := MsgPack.encode({String.chr(0x1F600): 1, String.chr(0xFF61): 2, "z": 3})
	check_eq(
		(astral.value as PackedByteArray).hex_encode(),
		"83a17a03a3efbda102a4f09f988001",
		"keys beyond the BMP sorted by UTF-8 bytes"
	)
	check_eq(MsgPack.encode(1.0).value.hex_encode(), "cb3ff0000000000000", "floats are float64")
	check_eq(MsgPack.encode(2.0).value.hex_encode(), "cb4000000000000000", "2.0 stays a float")
	check_eq(MsgPack.encode([0.0, 0]).value.hex_encode(), "92cb000000000000000000", "0.0 and 0")
	# A null map value is an unset field, left out at every depth; a null array item stays.
	var unset := MsgPack.encode({"a": null, "b": {"c": null, "d": 1}, "e": [null]})
	check_eq(
		(unset.value as PackedByteArray).hex_encode(),
		"82a16281a16401a16591c0",
		"null map entries left out, null array items kept"
	)
	check_eq(MsgPack.encode({"a": null}).value.hex_encode(), "80", "an all-null map is empty")
	check_eq(MsgPack.encode(&"hi").value.hex_encode(), "a26869", "StringName encodes as str")
	check_eq(MsgPack.encode(PackedStringArray(["a"])).value.hex_encode(), "91a161", "packed array")
	var deep: Variant = []
	for i in 100:
		deep = [deep]
	check(not MsgPack.encode(deep).is_ok(), "too deep to encode")
	var deep_bytes := PackedByteArray()
	for i in 100:
		deep_bytes.append(0x91)
	deep_bytes.append(0xC0)
	check(not MsgPack.decode(deep_bytes).is_ok(), "too deep to decode")
	check(not MsgPack.decode(PackedByteArray([0xD4, 0x01, 0x02])).is_ok(), "ext is rejected")


func test_strings_with_nul_and_leading_bom_round_trip() -> void:
	# "a\0b": a Godot String cannot hold U+0000, so it decodes to a RawString with the bytes.
	var nul := MsgPack.decode("a3610062".hex_decode())
	check(nul.is_ok() and nul.value is MsgPack.RawString, "a str with U+0000 is a RawString")
	if nul.value is MsgPack.RawString:
		check_eq(nul.value.bytes.hex_encode(), "610062", "its bytes are exact")
		check_eq(str(nul.value), "a\ufffdb", "shown with U+FFFD")
		check_eq(MsgPack.encode(nul.value).value.hex_encode(), "a3610062", "re-encoded exactly")
	var nul_only := MsgPack.decode("a100".hex_decode())
	check_eq(MsgPack.encode(nul_only.value).value.hex_encode(), "a100", "a lone U+0000")
	var made := MsgPack.RawString.new(PackedByteArray([0x61, 0x00]))
	check_eq(MsgPack.encode({"t": made}).value.hex_encode(), "81a174a26100", "sent exactly")
	var keyed := MsgPack.decode("81a2610001".hex_decode())
	check(keyed.is_ok(), "a map key with U+0000 decodes: " + keyed.error)
	check_eq(MsgPack.encode(keyed.value).value.hex_encode(), "81a2610001", "and re-encodes")
	var bad := MsgPack.encode(MsgPack.RawString.new(PackedByteArray([0xFF])))
	check(not bad.is_ok(), "a RawString of invalid UTF-8 is refused")
	# A leading U+FEFF is part of the string (the engine's UTF-8 reader drops one).
	for hex: String in ["a4efbbbf41", "a7efbbbfefbbbf41", "a3efbbbf", "a441efbbbf"]:
		var decoded := MsgPack.decode(hex.hex_decode())
		if not check(decoded.value is String, "%s decodes to a String" % hex):
			continue
		var text: String = decoded.value
		check_eq(text.to_utf8_buffer().hex_encode(), hex.substr(2), "%s keeps every U+FEFF" % hex)
		check_eq(MsgPack.encode(text).value.hex_encode(), hex, "%s re-encodes exactly" % hex)
	var bom := MsgPack.decode("a4efbbbf41".hex_decode())
	check_eq(String(bom.value).unicode_at(0), 0xFEFF, "the first character is U+FEFF")
	check_eq(MsgPack.encode(String.chr(0xFEFF)).value.hex_encode(), "a3efbbbf", "encodes U+FEFF")


func test_random_round_trips() -> void:
	var rng := RandomNumberGenerator.new()
	rng.seed = 42
	for i in 200:
		var value: Variant = _random_value(rng, 0)
		var encoded := MsgPack.encode(value)
		var decoded := MsgPack.decode(encoded.value)
		if not check(decoded.is_ok(), "round trip %d decodes" % i):
			return
		# Map entries whose value is null are left out by the encoder (unset fields).
		check(same(decoded.value, _left_out(value)), "round trip %d: %s" % [i, value])


func _json(file: String) -> Variant:
	return JSON.parse_string(FileAccess.get_file_as_string(VECTORS + file))


## [param file].msgpack decodes to a map of type [param kind] equal to [param file].json and
## re-encodes to the same bytes.
func _check_message_vector(file: String, kind: String) -> void:
	var raw := FileAccess.get_file_as_bytes(VECTORS + file + ".msgpack")
	check(not raw.is_empty(), "%s.msgpack exists" % file)
	var decoded := MsgPack.decode(raw)
	if not check(decoded.is_ok(), "%s decodes: %s" % [file, decoded.error]):
		return
	check(decoded.value is Dictionary, "%s is a map" % file)
	check_eq(decoded.value.get("type"), kind, "%s type" % file)
	check(_loose_equal(decoded.value, _json(file + ".json")), "%s equals its .json twin" % file)
	var encoded := MsgPack.encode(decoded.value)
	check(encoded.is_ok(), "%s re-encodes: %s" % [file, encoded.error])
	check_eq((encoded.value as PackedByteArray).hex_encode(), raw.hex_encode(), "%s bytes" % file)


func _random_value(rng: RandomNumberGenerator, depth: int) -> Variant:
	var pick := rng.randi_range(0, 8 if depth < 3 else 6)
	match pick:
		0:
			return null
		1:
			return rng.randf() < 0.5
		2:
			var shift := rng.randi_range(0, 62)
			var n := rng.randi() << shift >> rng.randi_range(0, 62)
			return -n if rng.randf() < 0.5 else n
		3:
			return rng.randf_range(-1e6, 1e6)
		4:
			var text := ""
			for k in rng.randi_range(0, 40):
				text += String.chr(
					[rng.randi_range(32, 126), 0xE9, 0xFEFF, 0x6A19, 0x1F600].pick_random()
				)
			return text
		5:
			var raw := PackedByteArray()
			for k in rng.randi_range(0, 300):
				raw.append(rng.randi_range(0, 255))
			return raw
		6:
			return rng.randi_range(-40, 300)
		7:
			var items: Array = []
			for k in rng.randi_range(0, 20):
				items.append(_random_value(rng, depth + 1))
			return items
	var map := {}
	for k in rng.randi_range(0, 20):
		map["k%d_%d" % [k, rng.randi()]] = _random_value(rng, depth + 1)
	return map


## Compares a decoded value with plain JSON, where every number is a float.
func _loose_equal(value: Variant, json: Variant) -> bool:
	if value is int or value is float:
		return (json is float or json is int) and float(value) == float(json)
	if value is PackedByteArray:
		return json is Dictionary and json.get("$bin") == value.hex_encode()
	if value is Dictionary and json is Dictionary:
		if value.size() != json.size():
			return false
		for key: Variant in value:
			if not json.has(key) or not _loose_equal(value[key], json[key]):
				return false
		return true
	if value is Array and json is Array:
		if value.size() != json.size():
			return false
		for i in value.size():
			if not _loose_equal(value[i], json[i]):
				return false
		return true
	return same(value, json)


## Compares a decoded value with tagged JSON: plain numbers are ints, {"$float": x} floats,
## {"$int": "digits"} big ints, {"$bin": "hex"} bytes.
func _tagged_equal(value: Variant, tagged: Variant) -> bool:
	if tagged is Dictionary and tagged.size() == 1:
		if tagged.has("$float"):
			return value is float and value == float(tagged["$float"])
		if tagged.has("$int"):
			return (value is int or value is MsgPack.UInt64) and str(value) == tagged["$int"]
		if tagged.has("$bin"):
			return value is PackedByteArray and value.hex_encode() == tagged["$bin"]
	if tagged is float:
		return value is int and value == int(tagged)
	if tagged is Dictionary and value is Dictionary:
		if value.size() != tagged.size():
			return false
		for key: Variant in tagged:
			if not value.has(key) or not _tagged_equal(value[key], tagged[key]):
				return false
		return true
	if tagged is Array and value is Array:
		if value.size() != tagged.size():
			return false
		for i in value.size():
			if not _tagged_equal(value[i], tagged[i]):
				return false
		return true
	return same(value, tagged)


## [param value] without its null map entries, as the encoder sends it.
func _left_out(value: Variant) -> Variant:
	if value is Dictionary:
		var out := {}
		for key: Variant in value:
			if typeof(value[key]) != TYPE_NIL:
				out[key] = _left_out(value[key])
		return out
	if value is Array:
		return (value as Array).map(_left_out)
	return value


## True when every value under a key named in [param fields], at any depth, is a [float].
func _floats_are_floats(value: Variant, fields: Array) -> bool:
	if value is Array:
		return (value as Array).all(_floats_are_floats.bind(fields))
	if not value is Dictionary:
		return true
	for key: Variant in value:
		if key in fields and not value[key] is float:
			return false
		if not _floats_are_floats(value[key], fields):
			return false
	return true

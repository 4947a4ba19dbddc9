"""JSON bodies as sandboxed Lua writes them, over real HTTP: an empty table is ``[]`` (Roblox's
``HttpService:JSONEncode``, Garry's Mod's ``util.TableToJSON``) or ``null``
(``minetest.write_json``), read as the empty value the field wants; msgpack bodies and
WebSocket frames keep their strict types."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect

from npcbridge.protocol import encode, unpack
from npcbridge.testing.bridge import Bridge
from tests.http_helpers import HELLO, Transport, decode_body


@pytest.fixture
def http(bridge: Bridge) -> Transport:
    return Transport(bridge.server.port)


#: ``npc.define`` as util.TableToJSON writes it for a persona with empty tables (every whole
#: number with a fraction, keys as Lua's table order leaves them)
GMOD_DEFINE = (
    b'{"npc":"smith","type":"npc.define","id":1.0,"persona":{"actions":[],"knowledge":[],'
    b'"name":"Brom","state":{"on_action":[],"trust":5.0},"card":[]}}'
)
#: ``say`` as HttpService:JSONEncode writes it with ``context = {}`` and ``effects = {}``
ROBLOX_SAY = (
    b'{"type":"say","id":"r1","npc":"smith","player":"Builderman","text":"hi",'
    b'"context":[],"effects":[]}'
)
#: the same through minetest.write_json: the empty tables are ``null``
LUANTI_DEFINE = (
    b'{"type":"npc.define","id":"d2","npc":"guard","persona":{"name":"Hild","actions":null,'
    b'"examples":null,"state":{"on_action":null}}}'
)
LUANTI_SAY = (
    b'{"type":"say","id":"l1","npc":"guard","player":"singleplayer","text":"hi",'
    b'"context":null,"urgency":null}'
)


async def test_empty_tables_from_lua_json_writers_are_read_as_empty_values(
    http: Transport,
) -> None:
    key = await http.open()
    for define, request_id in [(GMOD_DEFINE, 1), (LUANTI_DEFINE, "d2")]:
        defined = await http.post(key, define)
        assert defined.status == 200, defined.body
        assert defined.json()["messages"] == [{"type": "ok", "id": request_id}]
    # the object form of an empty list (a writer that marks maps) works too
    mapped = b'{"type":"npc.define","id":"d3","npc":"mage","persona":{"name":"A","actions":{}}}'
    assert (await http.post(key, mapped)).json()["messages"] == [{"type": "ok", "id": "d3"}]
    for say in (ROBLOX_SAY, LUANTI_SAY):
        said = await http.post(key, say, "?wait=10")
        assert said.status == 200, said.body
        assert said.json()["messages"][-1]["type"] == "reply.end"
    state = {"type": "npc.state", "id": "s", "npc": "smith", "player": "p"}
    got = (await http.post(key, state, "?wait=5")).json()["messages"]
    assert got[0]["relationship"]["trust"] == 5  # the persona's state arrived whole


async def test_a_wrong_kind_is_refused_naming_the_field_without_the_value(
    http: Transport,
) -> None:
    key = await http.open()
    await http.post(key, GMOD_DEFINE)
    bad = ROBLOX_SAY.replace(b'"context":[]', b'"context":["s3cret-item"]')
    refused = await http.post(key, bad, "?wait=5")
    assert refused.status == 400 and refused.json()["code"] == "bad_request"
    message = refused.json()["message"]
    assert message == "say: field 'context': Input should be a valid dictionary", message
    assert b"s3cret" not in refused.body
    listed = b'{"type":"npc.define","npc":"x","persona":{"name":"X","actions":{"a":"s3cret"}}}'
    refused = await http.post(key, listed)
    assert refused.status == 400 and b"s3cret" not in refused.body
    assert "field 'persona.actions': Input should be a valid list" in refused.json()["message"]


async def test_msgpack_and_websocket_keep_strict_kinds(bridge: Bridge, http: Transport) -> None:
    """Only JSON loses the difference: a msgpack body or frame says what it means."""
    key = await http.open()
    say = {"type": "say", "id": 4, "npc": "smith", "player": "p", "text": "hi", "context": []}
    expected = {"type": "error", "code": "bad_request", "id": 4, "retryable": False,
                "refused": "say",
                "message": "say: field 'context': Input should be a valid dictionary"}  # fmt: skip
    packed = await http.post(key, say, "?wait=5", msgpack_body=True)
    assert packed.status == 400 and decode_body(packed) == expected
    ws = await connect(bridge.url)
    try:
        await ws.send(encode(HELLO))
        assert unpack(await ws.recv())["type"] == "welcome"
        await ws.send(encode(say))
        assert unpack(await asyncio.wait_for(ws.recv(), 5)) == expected
        await ws.send(encode({**say, "context": {}, "urgency": None, "id": 5}))
        assert unpack(await asyncio.wait_for(ws.recv(), 5))["message"].startswith(
            "say: field 'urgency'"
        )
    finally:
        await ws.close()

"""The message ring of an HTTP session: numbering, delta seq and merging, acknowledging, the
byte bound, and merge=1 on reading."""

from __future__ import annotations

from npcbridge.server.http_ring import MessageRing, merge_deltas


def delta(request_id: int, text: str) -> dict:
    return {"type": "reply.delta", "id": request_id, "text": text}


def test_messages_are_numbered_and_deltas_get_their_seq() -> None:
    ring = MessageRing(1 << 20)
    ring.append({"type": "reply.start", "id": 1})
    ring.append(delta(1, "Aye"))
    assert ring.since(0) == [
        (0, {"type": "reply.start", "id": 1}),
        (1, {"type": "reply.delta", "id": 1, "seq": 0, "text": "Aye"}),
    ]
    ring.append(delta(1, ", lad"))  # its previous delta was handed out: a message of its own
    ring.append(delta(1, "."))  # nobody saw ", lad" yet: merged into it
    assert ring.since(2) == [(2, {"type": "reply.delta", "id": 1, "seq": 1, "text": ", lad."})]
    ring.append({"type": "reply.end", "id": 1, "text": "Aye, lad."})
    ring.append(delta(1, "again"))  # a new reply under the same id starts at seq 0
    assert ring.since(4)[0][1]["seq"] == 0
    assert ring.next == 5


def test_another_frame_of_the_reply_ends_the_merging() -> None:
    ring = MessageRing(1 << 20)
    ring.append(delta(1, "a"))
    ring.append(delta(2, "x"))  # other replies do not separate a reply's deltas
    ring.append(delta(1, "b"))
    ring.append({"type": "emote", "id": 1, "emote": "nods"})
    ring.append(delta(1, "c"))
    texts = [(f["id"], f.get("text"), f.get("seq")) for _, f in ring.since(0)]
    assert texts == [(1, "ab", 0), (2, "x", 0), (1, None, None), (1, "c", 1)]


def test_acknowledging_and_the_byte_bound() -> None:
    ring = MessageRing(4096)
    for n in range(10):
        ring.append({"type": "pong", "id": n})
    ring.acknowledge(4)
    assert ring.first == 4 and [seq for seq, _ in ring.since(0)] == list(range(4, 10))
    for n in range(10, 500):
        ring.append({"type": "pong", "id": n, "pad": "x" * 20})
    assert ring.held_bytes <= 4096 and ring.first > 10 and ring.next == 500
    assert ring.since(ring.first)[-1][1]["id"] == 499
    ring.acknowledge(10_000)  # beyond the end: everything, and the cursor stays the session's
    assert ring.first == 500 and ring.since(0) == []


def test_merge_on_reading() -> None:
    frames = [
        {"type": "reply.start", "id": 1},
        {"type": "reply.delta", "id": 1, "seq": 0, "text": "Ay"},
        {"type": "reply.delta", "id": 2, "seq": 0, "text": "Hm"},
        {"type": "reply.delta", "id": 1, "seq": 1, "text": "e, "},
        {"type": "reply.delta", "id": 1, "seq": 2, "text": "lad"},
        {"type": "action", "id": 1, "name": "wave"},
        {"type": "reply.delta", "id": 1, "seq": 3, "text": "."},
        {"type": "reply.delta", "id": 2, "seq": 1, "text": "m."},
    ]
    assert merge_deltas(frames) == [
        {"type": "reply.start", "id": 1},
        {"type": "reply.delta", "id": 1, "seq": 0, "text": "Aye, lad"},
        {"type": "reply.delta", "id": 2, "seq": 0, "text": "Hmm."},
        {"type": "action", "id": 1, "name": "wave"},
        {"type": "reply.delta", "id": 1, "seq": 3, "text": "."},
    ]
    assert frames[1]["text"] == "Ay"  # the frames read are not changed

"""Flow vectors for refusals: an ``error`` carrying ``refused`` ends a request only when it
refuses the message the client sent under that id and no frame came for it yet (``make_flows.py``
holds the format)."""

from __future__ import annotations

from typing import Any

# imported by make_flows.py, which puts this folder on the import path
from flow_frames import (
    RULE_REFUSAL,
    delta,
    end,
    error,
    start,
)

REFUSAL_FLOWS: list[dict[str, Any]] = [
    {
        "name": "refused duplicate say does not end the live reply",
        "rule": RULE_REFUSAL,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            error("t-1", "bad_request", "id: already in flight", refused="say"),
            delta("t-1", 0, "Hi"),
            end("t-1", "Hi"),
        ],
        "expect": {
            "t-1": {"ends": "reply", "at": 3, "finish": "stop", "text": "Hi", "deltas": "Hi"}
        },
        "stray": [1],
    },
    {
        "name": "refusal of the client's own fresh say ends it with the code",
        "rule": RULE_REFUSAL,
        "requests": {"t-1": "say", "t-2": "say"},
        "frames": [
            start("t-1"),
            error(
                "t-2",
                "too_many_in_flight",
                "too many requests in flight",
                refused="say",
                retryable=True,
            ),
            end("t-1", "Aye."),
        ],
        "expect": {
            "t-1": {"ends": "reply", "at": 2, "finish": "stop", "text": "Aye.", "deltas": ""},
            "t-2": {"ends": "error", "at": 1, "code": "too_many_in_flight"},
        },
        "stray": [],
    },
    {
        "name": "refused cancel of a request that is not cancellable leaves it waiting",
        "rule": RULE_REFUSAL,
        "requests": {"7": "memory.query"},
        "frames": [
            error(7, "bad_request", "id: this request cannot be cancelled", refused="cancel"),
            {"type": "memory", "id": 7, "items": []},
        ],
        "expect": {"7": {"ends": "answer", "at": 1, "answer_type": "memory"}},
        "stray": [0],
    },
    {
        "name": "refused cancel of a finished reply is stray",
        "rule": RULE_REFUSAL,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            end("t-1", "Done."),
            error("t-1", "bad_request", "id: no such request in flight", refused="cancel"),
        ],
        "expect": {
            "t-1": {"ends": "reply", "at": 1, "finish": "stop", "text": "Done.", "deltas": ""}
        },
        "stray": [2],
    },
    {
        "name": "connection-level error without id is stray",
        "rule": RULE_REFUSAL,
        "requests": {"t-1": "say"},
        "frames": [
            start("t-1"),
            error(None, "bad_request", "a message must be a msgpack map"),
            delta("t-1", 0, "Still here."),
            end("t-1", "Still here."),
            {"type": "pong", "id": 99},
        ],
        "expect": {
            "t-1": {
                "ends": "reply",
                "at": 3,
                "finish": "stop",
                "text": "Still here.",
                "deltas": "Still here.",
            }
        },
        "stray": [1, 4],
    },
]

"""Unit tests of builtin pieces that need no sockets."""

from __future__ import annotations

import time

from npcbridge.builtin.emotes import EmoteFilter
from npcbridge.builtin.postprocess import trim_unfinished
from npcbridge.providers.base import ProviderRequest, StreamDone, TextDelta
from npcbridge.providers.offline import OfflineProvider
from npcbridge.providers.openai_compat import parse_duration_s


def feed_all(pieces: list[str]) -> tuple[str, list[str]]:
    flt = EmoteFilter()
    text = "".join(flt.feed(p) for p in pieces) + flt.flush()
    return text, flt.found


def test_emotes_across_token_boundaries() -> None:
    assert feed_all(["*wipes", " hands* Aye", ", lad."]) == ("Aye, lad.", ["wipes hands"])
    assert feed_all(["Aye. (si", "ghs) Fine."]) == ("Aye. Fine.", ["sighs"])


def test_long_parenthesis_is_an_aside_not_an_emote() -> None:
    text, found = feed_all(["Go (when the moon is high over the old mill) now."])
    assert text == "Go (when the moon is high over the old mill) now." and found == []


def test_unclosed_star_is_dropped_and_unclosed_paren_spoken() -> None:
    assert feed_all(["Hi *grins"]) == ("Hi ", [])
    assert feed_all(["Hi (well"]) == ("Hi (well", [])


def test_trim_unfinished() -> None:
    assert trim_unfinished("Aye. The forge is") == "Aye."
    assert trim_unfinished("No sentence end") == "No sentence end"
    assert trim_unfinished('He said "go!" and') == 'He said "go!"'
    assert trim_unfinished("好的。然后") == "好的。"


def test_groq_durations() -> None:
    assert parse_duration_s("2m59.56s") == 179.56
    assert parse_duration_s("6m0s") == 360
    assert parse_duration_s("120ms") == 0.12
    assert parse_duration_s("7") == 7
    assert parse_duration_s("nonsense") is None


async def test_offline_provider_is_paced_and_in_character() -> None:
    provider = OfflineProvider(tokens_per_s=200)
    request = ProviderRequest(
        model="offline",
        messages=[{"role": "user", "content": "Where is the mine?"}],
        persona_name="Brom",
    )
    start = time.perf_counter()
    events = [e async for e in provider.stream(request)]
    elapsed = time.perf_counter() - start
    words = [e for e in events if isinstance(e, TextDelta)]
    assert "Brom" in "".join(w.text for w in words)
    assert elapsed >= len(words) / 200 * 0.9
    done = events[-1]
    assert isinstance(done, StreamDone) and done.usage and done.usage.output_tokens == len(words)

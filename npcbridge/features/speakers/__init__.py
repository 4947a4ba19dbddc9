"""The speaker cut: an NPC speaks only as itself.

* :mod:`.cut` -- the cut itself, on a stream (:class:`.cut.SpeakerCut`) or a whole text;
* :mod:`.hooks` -- applying it to every turn (the gameplay plugin's per-turn hooks).
"""

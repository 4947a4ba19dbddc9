"""Test helpers shared by every npcbridge test suite and benchmark (see ``fake_upstream``)."""

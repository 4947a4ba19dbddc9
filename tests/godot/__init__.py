"""Harness for running the Godot addon's tests in a real Godot 4.6 (web build, headless Chromium).

Used by ``tests/test_godot.py``; see ``bindings/godot/README.md``.
"""

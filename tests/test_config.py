"""Settings: every section is a typed model reachable from one Config, and every settings error
is one line naming the field, in our words, without the value that was given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from npcbridge.config import ConfigError, load_config
from npcbridge.memory.settings import MemorySettings
from npcbridge.plugin.registry import Registry, SettingsError


def config_error(tmp_path: Path, toml: str) -> str:
    path = tmp_path / "npcbridge.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    return str(info.value)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[gateway]\nturn_deadline_s = "soon"\n', "gateway.turn_deadline_s: must be a number"),
        ("[gateway]\nturn_deadline_s = 0\n", "gateway.turn_deadline_s: must be greater than 0"),
        ('[server]\nport = "eighty"\n', "server.port: must be an integer"),
        ("[server]\nport = 70000\n", "server.port: must be at most 65535"),
        ('[cache]\nenabled = "maybe"\n', "cache.enabled: must be true or false"),
        ("[retry]\nmax_atempts = 3\n", "retry.max_atempts: is not a known setting"),
        ('[gateway]\nquality_tier = "huge"\n', "gateway.quality_tier: must be 'small', 'large'"),
        ("gateway = 3\n", "gateway: must be a table"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_field(
    tmp_path: Path, toml: str, message: str
) -> None:
    error = config_error(tmp_path, toml)
    assert error.startswith(message) and "\n" not in error


def test_errors_never_repeat_the_value(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[gateway]\nturn_deadline_s = "SECRET-VALUE"\n')
    assert "SECRET-VALUE" not in error and "Input should" not in error


def test_several_problems_are_counted_on_the_same_line(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[server]\nport = "x"\nmax_in_flight = "y"\n')
    assert error == "server.port: must be an integer (and 1 more problems)"


def test_a_plugin_section_is_typed_and_reachable_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "npcbridge.toml"
    path.write_text("[extra.memory]\nwindow_share = 0.25\n")
    config = load_config(path, env={})
    Registry().add_settings("memory", MemorySettings, config.extra)
    memory = config.section("memory")
    assert isinstance(memory, MemorySettings) and memory.window_share == 0.25
    assert config.section("gateway") is config.gateway
    with pytest.raises(KeyError):
        config.section("nobody")


def test_a_bad_plugin_section_is_a_one_line_config_error(tmp_path: Path) -> None:
    path = tmp_path / "npcbridge.toml"
    path.write_text('[extra.memory]\nwindow_share = "half"\n')
    config = load_config(path, env={})
    with pytest.raises(SettingsError) as info:
        Registry().add_settings("memory", MemorySettings, config.extra)
    assert isinstance(info.value, ConfigError)
    assert str(info.value) == "extra.memory.window_share: must be a number"


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        ('[gateway]\nturn_deadline_s = "soon"\n', "gateway.turn_deadline_s: must be a number"),
        ('[extra.memory]\nwindow_share = "half"\n', "extra.memory.window_share: must be a number"),
    ],
)
def test_cli_start_up_with_a_bad_config_prints_one_line(
    tmp_path: Path, toml: str, line: str
) -> None:
    path = tmp_path / "npcbridge.toml"
    path.write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NPCBRIDGE_", "GROQ_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "npcbridge.cli", "serve", "--config", str(path), "--port", "0"],
        env={**env, "NPCBRIDGE_STORE": str(tmp_path / "s.db")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    # besides the start-up log (the plugins loaded before their sections are validated)
    said = [ln for ln in proc.stderr.strip().splitlines() if " INFO " not in ln]
    assert said == [f"npcbridge: config error: {line}"]

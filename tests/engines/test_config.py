"""Config loading: defaults, lookup order, and each kind of mistake (exit code 2, one line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autovoice.config import AppConfig, find_config_path, load_config, packaged_config_path
from autovoice.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_packaged_default_equals_dataclass_defaults() -> None:
    loaded = load_config(packaged_config_path())
    assert loaded == AppConfig()


def test_every_dataclass_field_is_documented_in_default_yaml() -> None:
    data = yaml.safe_load(packaged_config_path().read_text())
    defaults = AppConfig().to_dict()

    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(data) == keys(defaults)
    text = packaged_config_path().read_text().splitlines()
    for i, line in enumerate(text):
        if (
            line.strip()
            and not line.lstrip().startswith("#")
            and line.rstrip().endswith(tuple("0123456789elwhtdnuo"))
        ):
            assert text[i - 1].lstrip().startswith("#"), f"undocumented key: {line}"


def test_values_are_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "synthesis:\n  rate: 1.5\naudio:\n  latency: 0.02\n"))
    assert config.synthesis.rate == 1.5
    assert config.audio.latency == 0.02
    assert config.source == str(tmp_path / "config.yaml")


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("voise: x\n", "voise", "unknown key"),
        ("synthesis:\n  speed: 2\n", "synthesis.speed", "unknown key"),
        ("synthesis:\n  rate: fast\n", "synthesis.rate", "expected number"),
        ("engines:\n  torch:\n    compile: 1\n", "engines.torch.compile", "expected true/false"),
        ("synthesis:\n  rate: 99\n", "synthesis.rate", "out of range (accepted: 0.1 .. 10.0)"),
        ("engine: warp\n", "engine", "not one of: auto, onnx"),
        ("audio:\n  latency: medium\n", "audio.latency", "low, high, or seconds"),
        ("synthesis: 3\n", "synthesis", "expected a mapping"),
    ],
)
def test_each_mistake_names_file_key_and_accepted(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ")
    assert words in message
    assert "\n" not in message


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, "voice: default\nsynthesis: [\n")
    with pytest.raises(ConfigError, match=r"invalid YAML \(line \d+\)"):
        load_config(path)


def test_lookup_order(tmp_path: Path) -> None:
    explicit = write(tmp_path, "")
    assert find_config_path(str(explicit), {}) == explicit
    xdg = tmp_path / "xdg"
    (xdg / "autovoice").mkdir(parents=True)
    (xdg / "autovoice" / "config.yaml").write_text("")
    assert find_config_path(None, {"XDG_CONFIG_HOME": str(xdg)}) == xdg / "autovoice/config.yaml"
    empty = tmp_path / "empty"
    assert find_config_path(None, {"XDG_CONFIG_HOME": str(empty)}) == packaged_config_path()
    with pytest.raises(ConfigError, match="config file not found"):
        find_config_path(str(tmp_path / "missing.yaml"), {})


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "synthesis:\n  rate: -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "autovoice", "synth", "--config", str(path), "-o", "-", "hi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"autovoice: error: {path}: synthesis.rate: -1 is out of range (accepted: 0.1 .. 10.0)"
    ]

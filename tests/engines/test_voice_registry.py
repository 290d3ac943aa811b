"""VoiceRegistry: a cheap, current view of the voices directory."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from autovoice.engines.voice import default_voice_path, voices_dir_path
from autovoice.engines.voice_registry import VoiceRegistry


def add_copy(directory: Path, name: str) -> Path:
    model = default_voice_path()
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(f"{model}.json", directory / f"{name}.onnx.json")
    shutil.copyfile(model, directory / f"{name}.onnx")
    return directory / f"{name}.onnx"


def settle(root: Path) -> None:
    """Date every directory below `root` 10 s back, as if nothing had changed lately."""
    past = time.time_ns() - 10_000_000_000
    for directory in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        os.utime(directory, ns=(past, past))


def test_rescans_only_when_the_directory_changes(tmp_path: Path) -> None:
    registry = VoiceRegistry(tmp_path)
    default = default_voice_path().name.removesuffix(".onnx")
    assert registry.names() == [default]  # the directory is new: scanned again next time
    settle(tmp_path)
    assert registry.names() == [default]
    scans = registry.scans
    assert registry.names() == [default] and registry.scans == scans  # no change: no rescan
    add_copy(tmp_path, "fresh")
    assert registry.find("fresh") is not None and registry.scans == scans + 1
    add_copy(tmp_path / "nested" / "deeper", "deep")  # a new directory below
    assert registry.find("deep") is not None
    add_copy(tmp_path / "nested" / "deeper", "deeper2")  # changes only the nested directory
    assert "deeper2" in registry.names()
    settle(tmp_path)
    registry.names()
    scans = registry.scans
    assert registry.find("nobody") is None and registry.scans == scans  # a miss, no change
    (tmp_path / "fresh.onnx").unlink()
    assert "fresh" not in registry.names()


def test_a_voice_replaced_in_place_is_read_again(tmp_path: Path) -> None:
    model = add_copy(tmp_path, "same")
    registry = VoiceRegistry(tmp_path)
    assert registry.find("same").quality == "medium"
    config = Path(f"{model}.json")
    raw = json.loads(config.read_text())
    raw["audio"]["quality"] = "high"
    config.write_text(json.dumps(raw))
    later = os.stat(config).st_mtime_ns + 10_000_000
    os.utime(config, ns=(later, later))
    assert registry.find("same").quality == "high"


def test_a_broken_voice_is_left_out(tmp_path: Path) -> None:
    add_copy(tmp_path, "good")
    (tmp_path / "bad.onnx").write_bytes(b"x" * 10)
    (tmp_path / "bad.onnx.json").write_text("{}")
    names = VoiceRegistry(tmp_path).names()
    assert "good" in names and "bad" not in names


def test_default_directory_follows_xdg(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert VoiceRegistry(None).directory == tmp_path / "autovoice" / "voices"
    assert voices_dir_path(None) == tmp_path / "autovoice" / "voices"

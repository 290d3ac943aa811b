"""`autovoice voices --available/install/remove` against a real HTTP server on 127.0.0.1 that
serves a generated catalogue and generated voices, with real faults: missing files, a wrong
MD5, a connection dropped mid-file, a full disk (a small tmpfs), unsafe catalogue paths."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from autovoice.catalogue.catalogue import (
    Catalogue,
    fetch_catalogue,
    parse_catalogue,
    safe_relative_path,
)
from autovoice.catalogue.cli import ProgressBar
from autovoice.catalogue.install import install_voice
from autovoice.cli import main
from autovoice.errors import CatalogueError
from tests.audio_fixtures import REPO_ROOT
from tests.catalogue.mirror import Mirror, entry_for, tree, voice_config

GOOD, OTHER = "en_US-alpha-low", "de_DE-beta-medium"


def blob(size: int, seed: int = 0) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[seed : seed + size]


@pytest.fixture(scope="module")
def mirror():
    m = Mirror()
    m.add_voice(GOOD, blob(300_000))
    m.add_voice(OTHER, blob(200_000, 7))
    m.add_voice("en_GB-badmd5-low", blob(50_000))
    for facts in m.catalogue["en_GB-badmd5-low"]["files"].values():
        facts["md5_digest"] = "0" * 32
    entry = m.add_voice("en_US-missing-low", blob(40_000))
    for path in entry["files"]:
        if path.endswith(".onnx"):
            del m.files[path]
    entry = m.add_voice("en_US-dropped-low", blob(400_000))
    for path in entry["files"]:
        if path.endswith(".onnx"):
            m.drop_after[path] = 150_000
    m.add_voice("en_US-huge-low", blob(6_000_000))
    m.add_voice("en_US-filler-low", blob(1_500_000))
    m.catalogue["../../evil"] = entry_for("../../evil", {"x.onnx": b"1", "x.onnx.json": b"{}"})
    m.files["../../escape.onnx"] = blob(2000)
    m.files["../../escape.onnx.json"] = voice_config()
    m.catalogue["en_US-escape-low"] = entry_for(
        "en_US-escape-low",
        {"../../escape.onnx": blob(2000), "../../escape.onnx.json": voice_config()},
    )
    m.start()
    yield m
    m.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG directories of a fresh user below tmp_path; returns tmp_path."""
    for name in ("DATA", "CACHE", "CONFIG"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    return tmp_path


def voices_dir(home: Path) -> Path:
    return home / "data" / "autovoice" / "voices"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["voices", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("autovoice: error")]


def test_install_list_remove(mirror: Mirror, home: Path, capsys) -> None:
    code, out, err = cli(capsys, "--available", "--catalogue", mirror.url)
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert GOOD in rows and OTHER in rows and not rows[GOOD].rstrip().endswith("yes")
    assert "0.3 MB" in rows[GOOD] and "low" in rows[GOOD]
    assert "../../evil" not in rows and "en_US-escape-low" not in rows  # refused entries

    code, out, err = cli(capsys, "install", GOOD, OTHER, "--catalogue", mirror.url)
    assert code == 0, err
    target = voices_dir(home)
    assert tree(target) == {f"{k}.onnx{x}" for k in (GOOD, OTHER) for x in ("", ".json")}
    path = next(p for p in mirror.files if p.endswith(f"{GOOD}.onnx"))
    assert (target / f"{GOOD}.onnx").read_bytes() == mirror.files[path]
    assert oct((target / f"{GOOD}.onnx").stat().st_mode & 0o777) == "0o644"

    code, out, _ = cli(capsys, "--available", "--language", "de", "--catalogue", mirror.url)
    assert [line.split()[0] for line in out.splitlines()[1:]] == [OTHER]
    assert out.splitlines()[1].rstrip().endswith("yes")
    code, out, _ = cli(capsys)  # the local list: the default voice and the installed ones
    assert GOOD in out and OTHER in out

    before = len(mirror.requests)
    code, out, _ = cli(capsys, "install", GOOD, "--catalogue", mirror.url)
    assert code == 0 and "already installed" in out
    assert not any(r.endswith(".onnx") for r in mirror.requests[before:])

    code, out, _ = cli(capsys, "remove", GOOD)
    assert code == 0 and tree(target) == {f"{OTHER}.onnx", f"{OTHER}.onnx.json"}
    code, _, err = cli(capsys, "remove", GOOD)
    assert code == 2 and len(error_lines(err)) == 1 and "not installed" in err


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("en_US-missing-low", "HTTP 404"),
        ("en_GB-badmd5-low", "MD5 mismatch"),
        ("en_US-dropped-low", "dropped after"),
    ],
)
def test_a_failed_download_installs_nothing(mirror, home, capsys, name, problem) -> None:
    code, _, err = cli(capsys, "install", name, "--catalogue", mirror.url)
    assert code == 1
    assert len(error_lines(err)) == 1 and problem in error_lines(err)[0], err
    assert tree(voices_dir(home)) == set()  # not even a temporary file


def test_unknown_and_unsafe_names_are_refused(mirror, home, capsys) -> None:
    for name in ("xx_XX-nobody-low", "../../evil", "en_US-escape-low"):
        code, _, err = cli(capsys, "install", name, "--catalogue", mirror.url)
        assert code == 2 and "not in the catalogue" in err, (name, err)
    assert not (home.parent / "evil.onnx").exists()
    assert not (home.parent / "escape.onnx").exists()
    assert tree(home) <= {str(p.relative_to(home)) for p in (home / "cache").rglob("*.json")}


def test_catalogue_paths_never_leave_the_base() -> None:
    for bad in ("../x.onnx", "/etc/x.onnx", "a/../../x.onnx", "a\\..\\x", "a//b", "http://h/x"):
        with pytest.raises(CatalogueError):
            safe_relative_path(bad)
    data = {
        "ok-voice-low": entry_for("ok-voice-low", {"a/ok.onnx": b"1", "a/ok.onnx.json": b"2"}),
        "bad-voice-low": entry_for("bad-voice-low", {"../b.onnx": b"1", "b.onnx.json": b"2"}),
        "../up-low": entry_for("../up-low", {"u.onnx": b"1", "u.onnx.json": b"2"}),
        "noconfig-low": entry_for("noconfig-low", {"n.onnx": b"1"}),
    }
    catalogue = parse_catalogue(data, "http://127.0.0.1:9/base")
    assert list(catalogue.voices) == ["ok-voice-low"]
    assert len(catalogue.refused) == 3


def test_an_install_that_is_interrupted_leaves_nothing(mirror, home) -> None:
    catalogue = fetch_catalogue(mirror.url, home / "cache")
    voice = catalogue.get(GOOD)
    assert voice is not None

    def interrupt(name: str, done: int, total: int) -> None:
        if name.endswith(".onnx") and done > 0:
            raise KeyboardInterrupt

    target = voices_dir(home)
    with pytest.raises(KeyboardInterrupt):
        install_voice(voice, catalogue.base_url, target, progress=interrupt)
    assert tree(target) == set()


def test_the_catalogue_is_cached_and_used_offline(home, capsys, monkeypatch) -> None:
    m = Mirror()
    m.add_voice(GOOD, blob(3000))
    m.start()
    url = m.url
    try:
        assert cli(capsys, "--available", "--catalogue", url)[0] == 0
    finally:
        m.stop()
    code, out, _ = cli(capsys, "--available", "--catalogue", url)  # fresh cache: no request
    assert code == 0 and GOOD in out
    code, out, err = cli(capsys, "--available", "--refresh", "--catalogue", url)
    assert code == 0 and GOOD in out and "using the cached copy" in err
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "empty-cache"))
    code, _, err = cli(capsys, "--available", "--catalogue", url)
    assert code == 1 and len(error_lines(err)) == 1 and "cannot fetch" in err


def test_the_config_names_the_catalogue_and_the_voices_dir(mirror, home, capsys) -> None:
    config = home / "config.yaml"
    config.write_text(f"catalogue: {mirror.url}\nvoices_dir: {home / 'mine'}\n")
    code, _, err = cli(capsys, "install", OTHER, "--config", str(config))
    assert code == 0, err
    assert (home / "mine" / f"{OTHER}.onnx").is_file()


def test_progress_bar_on_a_terminal_only() -> None:
    shown = io.StringIO()
    bar = ProgressBar(shown, enabled=True)
    for done in (0, 500, 1000):
        bar("v.onnx", done, 1000)
    assert "100%" in shown.getvalue() and shown.getvalue().endswith("\n")
    quiet = io.StringIO()
    ProgressBar(quiet)("v.onnx", 1000, 1000)  # StringIO is not a tty
    assert quiet.getvalue() == ""


def test_languages_and_aliases() -> None:
    data = {
        "en_GB-a-low": entry_for("en_GB-a-low", {"a.onnx": b"1", "a.onnx.json": b"2"}),
        "en_US-b-low": entry_for(
            "en_US-b-low", {"b.onnx": b"1", "b.onnx.json": b"2"}, aliases=["en-us-old-low"]
        ),
        "fr_FR-c-low": entry_for("fr_FR-c-low", {"c.onnx": b"1", "c.onnx.json": b"2"}),
    }
    catalogue: Catalogue = parse_catalogue(data, "http://127.0.0.1:9")
    assert [v.key for v in catalogue.by_language("en")] == ["en_GB-a-low", "en_US-b-low"]
    assert [v.key for v in catalogue.by_language("en-US")] == ["en_US-b-low"]
    assert catalogue.get("en-us-old-low").key == "en_US-b-low"


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_installs_nothing(mirror, home, capsys) -> None:
    with tmpfs(home / "small", "4m") as small:
        target = small / "voices"
        # too big for the free space: refused before downloading
        config = home / "small.yaml"
        config.write_text(f"voices_dir: {target}\n")
        args = ("--config", str(config), "--catalogue", mirror.url)
        code, _, err = cli(capsys, "install", "en_US-huge-low", *args)
        assert code == 1 and "disk full" in err and len(error_lines(err)) == 1
        assert tree(target) == set()
        # fits when it starts, but the disk fills while it downloads: a real ENOSPC
        model = next(p for p in mirror.files if p.endswith("en_US-filler-low.onnx"))
        filler = small / f"filler-{uuid.uuid4().hex}"

        def fill() -> None:
            with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as f:
                while True:
                    f.write(b"\0" * 65536)

        mirror.before_send[model] = fill
        try:
            code, _, err = cli(capsys, "install", "en_US-filler-low", *args)
        finally:
            del mirror.before_send[model]
        assert code == 1 and "disk full" in err and len(error_lines(err)) == 1, err
        assert tree(target) == set()


def test_the_installed_command_end_to_end(mirror, tmp_path: Path) -> None:
    """The `autovoice` program itself (a new process): install, then list as installed."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    run = subprocess.run(
        [sys.executable, "-m", "autovoice", "voices", "install", OTHER, "--catalogue", mirror.url],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # not a terminal: no progress bar
    assert (tmp_path / "d" / "autovoice" / "voices" / f"{OTHER}.onnx").is_file()


def test_a_catalogue_that_is_not_a_url_is_a_usage_error(home, capsys) -> None:
    code, _, err = cli(capsys, "--available", "--catalogue", "mirror.lan/piper")
    assert code == 2 and len(error_lines(err)) == 1 and "catalogue" in err


def test_installing_a_voice_whose_phonemizer_is_missing_says_so(home, capsys) -> None:
    import importlib.util
    import json

    from piper.phonemize_chinese import PHONEME_TO_ID

    if importlib.util.find_spec("g2pw") is not None:
        pytest.skip("piper-tts[zh] is installed here")
    raw = json.loads(voice_config("zh_CN"))
    raw.update(phoneme_type="pinyin", phoneme_id_map=PHONEME_TO_ID)
    m = Mirror()
    m.add_voice("zh_CN-test-medium", blob(5000), json.dumps(raw).encode())
    m.start()
    try:
        code, out, err = cli(capsys, "install", "zh_CN-test-medium", "--catalogue", m.url)
    finally:
        m.stop()
    assert code == 0 and "installed" in out
    assert "warning" in err and "pip install 'piper-tts[zh]'" in err

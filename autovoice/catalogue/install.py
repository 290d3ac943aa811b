"""Installing and removing catalogue voices in the voices directory, all or nothing.

A voice is installed as `<voices_dir>/<key>.onnx` and `<key>.onnx.json`. Each file is downloaded
into a hidden temporary file in the voices directory (`.<key>.*.part`, which voice discovery
ignores), checked against the catalogue's size and MD5, and fsynced; the config is checked to be
a Piper voice config. Only when both files are good are they renamed into place (config first:
a voice is discovered by its `.onnx`, so it appears complete or not at all) and the directory
is fsynced. Any failure (HTTP status, dropped connection, checksum, full disk, interrupt)
removes the temporary files and leaves the voices directory as it was.

File names come from the voice key alone, which `catalogue.safe_name` has checked; the
catalogue's file paths only ever become URLs below its base. Nothing is written elsewhere.

Thread: any (the CLI's). RT-safe: no.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autovoice.catalogue.catalogue import (
    TIMEOUT_S,
    CatalogueFile,
    CatalogueVoice,
    file_url,
    network_problem,
    open_url,
    safe_name,
)
from autovoice.engines.voice import VoiceInfo
from autovoice.errors import CatalogueError, VoiceError

__all__ = ["InstallResult", "Progress", "install_voice", "installed_names", "remove_voice"]

CHUNK_BYTES = 1 << 16
SPACE_MARGIN_BYTES = 1 << 20
"""Free space kept beyond the voice's size before a download starts."""

INSTALLED_MODE = 0o644
"""Mode of installed voice files (temporary files start private)."""

Progress = Callable[[str, int, int], None]
"""`progress(file_name, bytes_done, bytes_total)`, called as a file downloads."""


@dataclass(frozen=True)
class InstallResult:
    """What `install_voice` did.

    Attributes:
        name: The voice key.
        model_path: The installed `.onnx`.
        downloaded_bytes: Bytes fetched (0 when it was already installed).
    """

    name: str
    model_path: Path
    downloaded_bytes: int


def installed_names(voices_dir: Path) -> set[str]:
    """Names of the voices in `voices_dir` (any depth; `.onnx` with `.onnx.json` beside it)."""
    if not voices_dir.is_dir():
        return set()
    return {
        p.name.removesuffix(".onnx")
        for p in voices_dir.rglob("*.onnx")
        if Path(f"{p}.json").is_file()
    }


def install_voice(
    voice: CatalogueVoice,
    base_url: str,
    voices_dir: Path,
    progress: Progress | None = None,
    force: bool = False,
    timeout_s: float = TIMEOUT_S,
) -> InstallResult:
    """Download `voice` into `voices_dir` (created if needed), verified, all or nothing.

    An installed copy whose files match the catalogue's sizes and MD5s is kept unless `force`.

    Raises:
        CatalogueError: download, check or write failed (nothing was installed).
    """
    if not safe_name(voice.key):
        raise CatalogueError(f"refusing unsafe voice name {voice.key!r}")
    model = voices_dir / f"{voice.key}.onnx"
    config = voices_dir / f"{voice.key}.onnx.json"
    try:
        voices_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogueError(f"cannot create {voices_dir}: {_os_problem(exc)}") from None
    if not force and _matches(model, voice.model) and _matches(config, voice.config):
        return InstallResult(voice.key, model, 0)
    _remove_stale_parts(voices_dir, voice.key)
    _check_space(voices_dir, voice.size)
    parts: list[str] = []
    try:
        config_part = _download(voice.config, base_url, voices_dir, voice.key, progress, timeout_s)
        parts.append(config_part)
        _check_config(config_part, voice)
        model_part = _download(voice.model, base_url, voices_dir, voice.key, progress, timeout_s)
        parts.append(model_part)
        os.replace(config_part, config)
        try:
            os.replace(model_part, model)
        except OSError:
            with contextlib.suppress(OSError):
                config.unlink()  # no lone config: the voice is not there at all
            raise
        parts.clear()
        _fsync_dir(voices_dir)
    except OSError as exc:
        raise CatalogueError(f"cannot install into {voices_dir}: {_os_problem(exc)}") from None
    finally:
        for part in parts:
            with contextlib.suppress(OSError):
                os.unlink(part)
    return InstallResult(voice.key, model, voice.size)


def remove_voice(name: str, voices_dir: Path) -> list[Path]:
    """Delete an installed voice's `.onnx` and `.onnx.json` from the top of `voices_dir`.

    Returns:
        The files deleted.

    Raises:
        VoiceError: not a voice name, or not installed there.
        CatalogueError: a file could not be deleted.
    """
    if not safe_name(name):
        raise VoiceError(name, "not a voice name")
    model = voices_dir / f"{name}.onnx"
    config = voices_dir / f"{name}.onnx.json"
    present = [p for p in (model, config) if p.is_file()]
    if not present:
        raise VoiceError(name, f"is not installed in {voices_dir}")
    try:
        for path in present:  # the model first: without it the voice is gone at once
            path.unlink()
        _fsync_dir(voices_dir)
    except OSError as exc:
        raise CatalogueError(f"cannot remove {name} from {voices_dir}: {exc}") from None
    return present


def _download(
    entry: CatalogueFile,
    base_url: str,
    voices_dir: Path,
    key: str,
    progress: Progress | None,
    timeout_s: float,
) -> str:
    """Fetch one file into a temporary file in `voices_dir`, checked; returns its path."""
    url = file_url(base_url, entry.path)
    name = entry.path.rsplit("/", 1)[-1]
    fd, part = tempfile.mkstemp(dir=voices_dir, prefix=f".{key}.", suffix=".part")
    try:
        os.fchmod(fd, INSTALLED_MODE)
        digest = hashlib.md5(usedforsecurity=False)
        done = 0
        with os.fdopen(fd, "wb") as out, open_url(url, timeout_s) as response:
            if progress:
                progress(name, 0, entry.size)
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except http.client.IncompleteRead as exc:
                    raise CatalogueError(
                        f"{url}: connection dropped after {done + len(exc.partial)} of "
                        f"{entry.size} bytes; not installed"
                    ) from None
                except (OSError, http.client.HTTPException) as exc:
                    raise CatalogueError(
                        f"{url}: download failed after {done} of {entry.size} bytes: "
                        f"{network_problem(exc)}; not installed"
                    ) from None
                if not chunk:
                    break
                done += len(chunk)
                if done > entry.size:
                    raise CatalogueError(
                        f"{url}: larger than the catalogue's {entry.size} bytes; not installed"
                    )
                digest.update(chunk)
                _write(out, chunk, voices_dir)
                if progress:
                    progress(name, done, entry.size)
            if done != entry.size:
                raise CatalogueError(
                    f"{url}: connection dropped after {done} of {entry.size} bytes; not installed"
                )
            if entry.md5 and digest.hexdigest() != entry.md5:
                raise CatalogueError(
                    f"{url}: MD5 mismatch (got {digest.hexdigest()}, catalogue says "
                    f"{entry.md5}); not installed"
                )
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise CatalogueError(f"cannot write {voices_dir}: {_os_problem(exc)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
    return part


def _write(out, chunk: bytes, voices_dir: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise CatalogueError(f"cannot write {voices_dir}: {_os_problem(exc)}") from None


def _check_config(path: str, voice: CatalogueVoice) -> None:
    """The downloaded `.onnx.json` must be a Piper voice config."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        VoiceInfo.from_config(voice.key, Path(path), Path(path), raw)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, VoiceError) as exc:
        problem = exc.problem if isinstance(exc, VoiceError) else str(exc)
        raise CatalogueError(f"{voice.config.path}: not a usable voice config: {problem}") from None


def _check_space(voices_dir: Path, size: int) -> None:
    free = shutil.disk_usage(voices_dir).free
    if free < size + SPACE_MARGIN_BYTES:
        raise CatalogueError(
            f"disk full: {voices_dir} has {free / 1e6:.1f} MB free, the voice needs "
            f"{size / 1e6:.1f} MB; nothing installed"
        )


def _matches(path: Path, entry: CatalogueFile) -> bool:
    """True when `path` exists with the catalogue's size and MD5."""
    try:
        if path.stat().st_size != entry.size:
            return False
        if not entry.md5:
            return True
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest() == entry.md5
    except OSError:
        return False


def _remove_stale_parts(voices_dir: Path, key: str) -> None:
    """Temporary files an interrupted earlier install of `key` left behind."""
    for stale in voices_dir.glob(f".{key}.*.part"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_problem(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full (no space left on device)"
    return exc.strerror or str(exc)

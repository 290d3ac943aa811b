"""Cache of the onnx engine's split graphs on disk, so a start skips the split (~0.35 s, the
`onnx` import and ~100 MB of start-up peak on the default voice).

An entry is a directory `<key>/` holding one `<stage>.onnx` per split graph and `meta.json`
(the split's facts: z tensor, z channels, flow halo). The key is a hash of what the split
depends on: the voice's `.onnx` and `.onnx.json` (path, size, modification time), the source of
the module that splits (`onnx_backend.py`, so any change to the split misses), and the onnx and
onnxruntime versions. Entries are written to a temporary directory and renamed into place, so a
crash never leaves half an entry under a real name; an entry that cannot be read is deleted (the
caller splits again). Where the cache cannot be written, the engine loads as before.

Thread: load time (the caller's thread). RT-safe: no.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SplitCache", "default_split_cache_dir", "split_key"]

_LOG = logging.getLogger(__name__)
META = "meta.json"


def default_split_cache_dir(environ: Mapping[str, str]) -> Path:
    """`$XDG_CACHE_HOME/autovoice/onnx`, else `~/.cache/autovoice/onnx`.

    >>> str(default_split_cache_dir({"XDG_CACHE_HOME": "/c"}))
    '/c/autovoice/onnx'
    """
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME", "~"), ".cache")
    return Path(os.path.expanduser(base)) / "autovoice" / "onnx"


def split_key(model_path: Path, splitter_source: Path, versions: tuple[str, ...]) -> str:
    """The entry name for a voice: 24 hex digits of a hash of what its split depends on."""
    digest = hashlib.sha256()
    for path in (model_path, Path(f"{model_path}.json")):
        st = path.stat()
        digest.update(f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    digest.update(splitter_source.read_bytes())
    digest.update("\0".join(versions).encode())
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class SplitCache:
    """Split graphs on disk under `root`."""

    root: Path

    def get(self, key: str) -> tuple[dict[str, Path], dict[str, Any]] | None:
        """The entry's graph files by stage and its facts, or None when there is none (an
        unreadable entry is removed)."""
        entry = self.root / key
        try:
            meta = json.loads((entry / META).read_text(encoding="utf-8"))
            files = {stage: entry / f"{stage}.onnx" for stage in meta["stages"]}
            if not all(path.is_file() for path in files.values()):
                raise FileNotFoundError("a stage's graph is missing")
        except FileNotFoundError:
            if entry.exists():
                self.discard(key)
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _LOG.warning("onnx split cache: dropping unreadable %s (%s)", entry, exc)
            self.discard(key)
            return None
        return files, meta["facts"]

    def put(
        self, key: str, graphs: Mapping[str, bytes], facts: Mapping[str, Any]
    ) -> dict[str, Path] | None:
        """Store an entry (atomically); returns its graph files, or None if it cannot."""
        entry = self.root / key
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.root))
            try:
                for stage, data in graphs.items():
                    (tmp / f"{stage}.onnx").write_bytes(data)
                meta = {"stages": list(graphs), "facts": dict(facts)}
                (tmp / META).write_text(json.dumps(meta), encoding="utf-8")
                os.rename(tmp, entry)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        except FileExistsError:
            pass  # another process stored it meanwhile
        except OSError as exc:
            if not entry.exists():
                _LOG.info("onnx split cache: cannot write %s (%s); not cached", self.root, exc)
                return None
        found = self.get(key)
        return found[0] if found is not None else None

    def discard(self, key: str) -> None:
        """Remove an entry (harmless when it is not there)."""
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root / key)

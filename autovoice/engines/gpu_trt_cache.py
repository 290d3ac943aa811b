"""Cache of built TensorRT plans on disk, keyed by voice, stage, precision, GPU and versions.

A plan is only valid for the exact TensorRT version and GPU model it was built on, so the key
holds both, with a hash of the voice file, the stage, its shape profile, the decoder precision
and our export version. Each plan `<key>.plan` has a sidecar `<key>.json` with the key fields
and the plan's SHA-256: a truncated, tampered or otherwise unreadable plan (or one TensorRT
refuses to deserialize) is deleted and rebuilt. Writes go to a temporary file and are renamed
into place, so a crash mid-write never leaves a half plan under the real name.

This module needs neither TensorRT nor torch (tested on any machine).

Thread: load time (the caller's thread). RT-safe: no.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["PlanCache", "PlanKey", "default_cache_dir", "file_hash"]

_LOG = logging.getLogger(__name__)
T = TypeVar("T")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """`$XDG_CACHE_HOME/autovoice/trt`, else `~/.cache/autovoice/trt`.

    >>> str(default_cache_dir({"XDG_CACHE_HOME": "/c"}))
    '/c/autovoice/trt'
    """
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME", "~"), ".cache")
    return Path(os.path.expanduser(base)) / "autovoice" / "trt"


def file_hash(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """First 16 hex digits of the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class PlanKey:
    """What a plan depends on.

    Attributes:
        voice_hash: `file_hash` of the voice's `.onnx`.
        stage: text, flow or decoder.
        precision: fp32, fp16 or bf16.
        gpu: GPU name (e.g. "NVIDIA H100 80GB HBM3") and compute capability.
        trt_version: TensorRT version string.
        profile: The shape profile, as text (min/opt/max of the dynamic axis).
        export_version: `gpu_export.EXPORT_VERSION`.
    """

    voice_hash: str
    stage: str
    precision: str
    gpu: str
    trt_version: str
    profile: str
    export_version: int

    def filename(self) -> str:
        """A file-system-safe, unique name for the plan (without suffix)."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        parts = (self.voice_hash, self.stage, self.precision, self.gpu, f"trt{self.trt_version}")
        readable = _UNSAFE.sub("_", "-".join(parts))[:120]
        return f"{readable}-{digest[:12]}"


class PlanCache:
    """Plans on disk under `directory`.

    Attributes:
        directory: Where plans live (created on first write).
        hits: Plans loaded from disk.
        builds: Plans built (missing, stale or corrupt).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.builds = 0

    def plan_path(self, key: PlanKey) -> Path:
        """Path of the plan file of `key`."""
        return self.directory / f"{key.filename()}.plan"

    def load_or_build(
        self,
        key: PlanKey,
        build: Callable[[], bytes],
        deserialize: Callable[[bytes], T | None],
    ) -> T:
        """The deserialized plan of `key`: from disk when valid, else built, stored, loaded.

        Args:
            key: What the plan depends on.
            build: Builds the serialized plan (slow: seconds to minutes).
            deserialize: Plan bytes -> engine, or None when the bytes are not a usable plan.

        Raises:
            RuntimeError: a freshly built plan does not deserialize.
            OSError: the plan cannot be written (directory not writable).
        """
        cached = self._read(key)
        if cached is not None:
            engine = _safe_deserialize(deserialize, cached)
            if engine is not None:
                self.hits += 1
                return engine
            _LOG.warning("tensorrt: plan %s does not load, rebuilding", self.plan_path(key).name)
            self._remove(key)
        data = build()
        self.builds += 1
        self._write(key, data)
        engine = _safe_deserialize(deserialize, data)
        if engine is None:
            self._remove(key)
            raise RuntimeError(f"a freshly built {key.stage} plan does not deserialize")
        return engine

    def _read(self, key: PlanKey) -> bytes | None:
        plan, meta = self.plan_path(key), self.plan_path(key).with_suffix(".json")
        if not plan.exists():
            return None
        try:
            data = plan.read_bytes()
            info = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            _LOG.warning("tensorrt: plan %s unreadable (%s), rebuilding", plan.name, e)
            return None
        if info.get("key") != asdict(key) or info.get("sha256") != hashlib.sha256(data).hexdigest():
            _LOG.warning("tensorrt: plan %s is stale or corrupt, rebuilding", plan.name)
            return None
        return data

    def _write(self, key: PlanKey, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        plan = self.plan_path(key)
        meta = {"key": asdict(key), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        _atomic_write(plan, data)
        _atomic_write(plan.with_suffix(".json"), json.dumps(meta, indent=1).encode())

    def _remove(self, key: PlanKey) -> None:
        plan = self.plan_path(key)
        for path in (plan, plan.with_suffix(".json")):
            try:
                path.unlink(missing_ok=True)
            except OSError as e:
                _LOG.warning("tensorrt: cannot remove %s: %s", path, e)


def _safe_deserialize(deserialize: Callable[[bytes], Any], data: bytes) -> Any:
    try:
        return deserialize(data)
    except Exception as e:  # TensorRT raises assorted types on garbage input
        _LOG.warning("tensorrt: deserializing a plan failed: %s: %s", type(e).__name__, e)
        return None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

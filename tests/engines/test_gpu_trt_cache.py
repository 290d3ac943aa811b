"""TensorRT plan cache: keys, hits, stale/corrupt plans rebuilt. The cache is plain files, so
this runs anywhere; `build` and `deserialize` here stand in for TensorRT's builder and runtime
(TensorRT itself is not installed on CPU machines: see the last test)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest

from autovoice.engines.gpu_trt_cache import PlanCache, PlanKey, default_cache_dir, file_hash

KEY = PlanKey(
    voice_hash="0123456789abcdef",
    stage="decoder",
    precision="fp16",
    gpu="NVIDIA H100 80GB HBM3 sm90",
    trt_version="10.3.0",
    profile="1-288-400",
    export_version=1,
)


class Builder:
    """Counts builds; "plans" are bytes that deserialize when they start with PLAN."""

    def __init__(self) -> None:
        self.calls = 0

    def build(self) -> bytes:
        self.calls += 1
        return b"PLAN" + bytes(range(64))

    @staticmethod
    def deserialize(data: bytes):
        return ("engine", len(data)) if data.startswith(b"PLAN") else None


def test_cache_dir_follows_xdg(tmp_path):
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "autovoice" / "trt"
    assert default_cache_dir({"HOME": "/home/u"}).as_posix() == "/home/u/.cache/autovoice/trt"


def test_key_names_differ_per_gpu_version_and_precision():
    names = {
        KEY.filename(),
        dataclasses.replace(KEY, gpu="NVIDIA H200 sm90").filename(),
        dataclasses.replace(KEY, trt_version="10.4.0").filename(),
        dataclasses.replace(KEY, precision="fp32").filename(),
        dataclasses.replace(KEY, voice_hash="ffffffffffffffff").filename(),
        dataclasses.replace(KEY, export_version=2).filename(),
    }
    assert len(names) == 6
    assert all("/" not in n and " " not in n for n in names)


def test_build_once_then_hit(tmp_path):
    builder = Builder()
    cache = PlanCache(tmp_path / "trt")
    first = cache.load_or_build(KEY, builder.build, builder.deserialize)
    again = PlanCache(tmp_path / "trt").load_or_build(KEY, builder.build, builder.deserialize)
    assert first == again and builder.calls == 1
    assert cache.plan_path(KEY).exists()
    meta = json.loads(cache.plan_path(KEY).with_suffix(".json").read_text())
    assert meta["key"]["gpu"] == KEY.gpu


@pytest.mark.parametrize("damage", ["truncate", "garbage_same_hash", "meta_missing", "stale_key"])
def test_corrupt_or_stale_plan_is_rebuilt(tmp_path, damage):
    builder = Builder()
    cache = PlanCache(tmp_path)
    cache.load_or_build(KEY, builder.build, builder.deserialize)
    plan = cache.plan_path(KEY)
    meta = plan.with_suffix(".json")
    if damage == "truncate":
        plan.write_bytes(plan.read_bytes()[:10])
    elif damage == "garbage_same_hash":  # hash matches but the runtime refuses the bytes
        import hashlib

        plan.write_bytes(b"JUNK")
        info = json.loads(meta.read_text())
        info["sha256"] = hashlib.sha256(b"JUNK").hexdigest()
        meta.write_text(json.dumps(info))
    elif damage == "meta_missing":
        meta.unlink()
    else:
        info = json.loads(meta.read_text())
        info["key"]["trt_version"] = "8.6.1"
        meta.write_text(json.dumps(info))
    engine = cache.load_or_build(KEY, builder.build, builder.deserialize)
    assert engine == Builder.deserialize(Builder().build())
    assert builder.calls == 2
    assert cache.load_or_build(KEY, builder.build, builder.deserialize) == engine
    assert builder.calls == 2  # the rebuilt plan is valid on disk


def test_fresh_plan_that_does_not_load_is_an_error(tmp_path):
    cache = PlanCache(tmp_path)
    with pytest.raises(RuntimeError, match="does not deserialize"):
        cache.load_or_build(KEY, lambda: b"JUNK", Builder.deserialize)
    assert not cache.plan_path(KEY).exists()


def test_deserializer_that_raises_counts_as_corrupt(tmp_path):
    cache = PlanCache(tmp_path)
    builder = Builder()
    cache.load_or_build(KEY, builder.build, builder.deserialize)
    calls = {"n": 0}

    def flaky_deserialize(data):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("Serialization assertion magicTagRead == kMAGIC_TAG failed")
        return Builder.deserialize(data)

    assert cache.load_or_build(KEY, builder.build, flaky_deserialize) is not None
    assert builder.calls == 2


def test_file_hash_is_stable(tmp_path):
    path = tmp_path / "voice.onnx"
    path.write_bytes(b"weights" * 1000)
    assert file_hash(path) == file_hash(path) and len(file_hash(path)) == 16


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT installed")
def test_tensorrt_missing_names_the_extra():
    with pytest.raises(ImportError, match=r"autovoice\[gpu\]"):
        import autovoice.engines.tensorrt_backend  # noqa: F401


def test_tensorrt_backend_profiles_with_a_stand_in_module(monkeypatch):
    """TensorRT is absent here, so a FAKE `tensorrt` module (only the names read at import)
    lets the backend's pure parts run: the optimisation profiles of each stage."""
    import enum
    import sys
    import types

    pytest.importorskip("torch")
    fake = types.ModuleType("tensorrt")
    fake.__version__ = "10.0.0-fake"
    fake.DataType = enum.Enum("DataType", "FLOAT HALF INT32 INT64 BOOL BF16")
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.delitem(sys.modules, "autovoice.engines.tensorrt_backend", raising=False)
    import autovoice.engines as package
    from autovoice.engines.gpu_random import random_vits
    from autovoice.engines.torch_vits import tiny_hparams

    try:
        from autovoice.engines import tensorrt_backend

        model = random_vits(tiny_hparams(n_speakers=2))
        profiles = tensorrt_backend._profiles(model, 512, 4096, (48, 64, 96, 400))
    finally:  # later imports must see the real (missing) TensorRT again
        sys.modules.pop("autovoice.engines.tensorrt_backend", None)
        if hasattr(package, "tensorrt_backend"):
            delattr(package, "tensorrt_backend")
    text, flow, dec = profiles["text"], profiles["flow"], profiles["decoder"]
    assert text.shapes("ids") == ((1, 1), (1, 64), (1, 512))
    assert text.shapes("g") == ((1, 12, 1),) * 3
    assert flow.shapes("noise") == ((1, 8, 1), (1, 8, 256), (1, 8, 4096))
    assert dec.shapes("z") == ((1, 8, 1), (1, 8, 96), (1, 8, 400))
    assert dec.text() == "1-96-400"

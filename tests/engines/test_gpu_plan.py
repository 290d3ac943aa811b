"""Fixed shapes of the GPU engines: precision per mode, buckets, and sliding decoder windows that
keep the streaming plan's samples (while zero-padding a window would not)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autovoice.engines.gpu_plan import (  # noqa: E402
    decode_planned,
    decoder_windows,
    phoneme_buckets,
    pick_bucket,
    resolve_precision,
    stream_plan,
)
from autovoice.engines.gpu_random import random_vits  # noqa: E402
from autovoice.engines.streaming import chunk_plan  # noqa: E402
from autovoice.engines.torch_vits import medium_hparams  # noqa: E402


@pytest.mark.parametrize(
    ("mode", "precision", "expected"),
    [
        ("quality", "fp16", "fp32"),
        ("quality", "bf16", "fp32"),
        ("balanced", "fp32", "fp32"),
        ("balanced", "bf16", "bf16"),
        ("speed", "fp32", "fp16"),
        ("speed", "bf16", "bf16"),
    ],
)
def test_precision_per_mode(mode, precision, expected):
    assert resolve_precision(mode, precision) == expected


def test_bad_precision_or_mode_lists_accepted_values():
    with pytest.raises(ValueError, match="fp32, fp16, bf16"):
        resolve_precision("speed", "int8")
    with pytest.raises(ValueError, match="speed, balanced or quality"):
        resolve_precision("turbo", "fp32")


def test_largest_phoneme_bucket_covers_packed_units():
    buckets = phoneme_buckets(200)
    assert max(buckets) >= 400
    assert pick_bucket(1, buckets) == 32
    assert pick_bucket(max(buckets) + 1, buckets) is None


@pytest.mark.parametrize(("first", "largest", "halo"), [(16, 256, 16), (8, 64, 8), (32, 32, 0)])
def test_sliding_windows_keep_the_plan_and_only_add_context(first, largest, halo):
    windows = decoder_windows(first, largest, halo)
    for total in [1, 5, 20, 47, 48, 49, 100, 333, 1000, 2049]:
        plain = chunk_plan(total, first, largest, halo)
        fixed = stream_plan(total, first, largest, halo, windows)
        assert [(p.start, p.end) for p in fixed] == [(p.start, p.end) for p in plain]
        for p, f in zip(plain, fixed, strict=True):
            assert f.window_start <= p.window_start and f.window_end >= p.window_end
            assert f.window_start >= 0 and f.window_end <= total
            size = pick_bucket(p.window_end - p.window_start, windows)
            if size is not None and size <= total:  # else the clause is too short: eager
                assert f.window_end - f.window_start == size


@pytest.fixture(scope="module")
def medium():
    return random_vits(medium_hparams(), seed=3)


def test_sliding_windows_equal_whole_decoding(medium):
    """The decoder windows a CUDA graph replays give the whole-utterance samples."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(192, 90, generator=gen).numpy()

    class Decoder:
        hop_samples = 256

        def decode(self, window, speaker_id=None):
            with torch.inference_mode():
                return medium.decode(torch.from_numpy(window)[None]).reshape(-1).numpy()

    whole = Decoder().decode(z)
    plans = stream_plan(90, 8, 32, 12, decoder_windows(8, 32, 12))
    streamed = np.concatenate(list(decode_planned(Decoder(), z, None, plans)))
    assert len(streamed) == len(whole)
    assert np.linalg.norm(streamed - whole) / np.linalg.norm(whole) < 1e-5


def test_zero_padding_a_decoder_window_is_not_exact(medium):
    """Why windows slide instead: the decoder has no mask, so zero frames after the end of the
    clause change its last samples (this is what a padded fixed-shape window would do)."""
    z = torch.randn(1, 192, 40, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        exact = medium.decode(z).reshape(-1)
        padded = medium.decode(torch.nn.functional.pad(z, (0, 8))).reshape(-1)[: exact.numel()]
    tail = slice(-256, None)
    assert torch.linalg.norm(padded[tail] - exact[tail]) / torch.linalg.norm(exact[tail]) > 1e-3

"""`autovoice bench` in its reduced form, end to end, so it cannot rot."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

from autovoice.bench.report import print_table
from autovoice.bench.sentences import SENTENCES, UNIQUE_SENTENCES, length_class
from autovoice.bench.stats import summarize
from autovoice.bench.wyoming_run import print_wyoming


def test_summarize_percentiles() -> None:
    summary = summarize([float(v) for v in range(1, 101)])
    assert summary.n == 100
    assert math.isclose(summary.p50_ms, 50.5)
    assert 95 <= summary.p95_ms <= 96 and 99 <= summary.p99_ms <= 100
    assert math.isnan(summarize([]).p50_ms)


def test_sentences_played_to_the_end_are_summed_and_reported() -> None:
    from autovoice.bench.cli import played_summary
    from autovoice.bench.report import _print_heard

    plays = [
        {"audio_s": 2.5, "underruns": 0, "portaudio_underflows": 1, "dropouts_at_device": 0},
        {"audio_s": 3.0, "underruns": 2, "portaudio_underflows": 0, "dropouts_at_device": 1,
         "longest_dropout_ms": 6.0},
    ]  # fmt: skip
    summary = played_summary(plays)
    assert summary == {
        "n": 2,
        "audio_s": 5.5,
        "underruns": 2,
        "portaudio_underflows": 1,
        "dropouts_at_device": 1,
        "longest_dropout_ms": 6.0,
    }
    row = summarize([50.0]).to_dict()
    heard = {
        "at_device": True,
        "sentences": 1,
        "ttfa": row,
        "by_length": {},
        "busy_core": row,
        "cached": row,
        "stop": row,
        "breakdown_p50_ms": {"request_to_callback": 40.0, "output_buffer": 12.0, "lead_in": 1.0},
        "sentences_played_busy": summary,
    }
    out = io.StringIO()
    _print_heard({"heard": heard}, out)
    assert "the 2 busy-core sentences played to the end (5.5 s, one core busy): underruns 2" in (
        out.getvalue()
    )


def test_sentences_cover_lengths() -> None:
    assert set(SENTENCES) == {"short", "medium", "long"}
    assert max(len(t) for t in SENTENCES["long"]) <= 300
    assert min(len(t) for t in SENTENCES["long"]) > 200


def test_heard_sentences_are_new_to_the_daemon() -> None:
    from autovoice.bench import cli, daemon_run

    assert len(cli._IDLE) >= 30 and len(set(UNIQUE_SENTENCES)) == len(UNIQUE_SENTENCES)
    assert all(10 <= len(t) <= 240 for t in UNIQUE_SENTENCES)
    assert not set(cli._BUSY) & set(cli._IDLE)
    spoken_elsewhere = {daemon_run._STOP_TEXT, daemon_run._CACHED_TEXT, "Hello world."}
    assert not spoken_elsewhere & set(UNIQUE_SENTENCES)
    assert {length_class(t) for t in cli._IDLE} == {"short", "medium", "long"}


def test_bad_bench_config_stops_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bench.yaml"
    config.write_text("streaming:\n  first_chunk_frames: lots\n")
    result = subprocess.run(
        [sys.executable, "-m", "autovoice", "bench", "--quick", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "first_chunk_frames" in lines[0] and str(config) in lines[0]


def test_quick_bench_runs_end_to_end(tmp_path: Path) -> None:
    plot = tmp_path / "ttfa.png"
    config = tmp_path / "bench.yaml"
    config.write_text("engine: onnx\nstreaming:\n  first_chunk_frames: 16\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "autovoice",
            "bench",
            "--quick",
            "--json",
            "--virtual-device",
            "--config",
            str(config),
            "--plot",
            str(plot),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert set(data["ttfa"]) == {"short", "medium", "long"}
    for row in data["ttfa"].values():
        assert row["n"] == 3 and 0 < row["p50_ms"] < 5000
    # the headline is measured at the device: 9 new sentences, each heard after its callback
    heard = data["heard"]
    assert heard["at_device"] and heard["sentences"] == 9 and heard["ttfa"]["n"] == 9
    assert set(heard["by_length"]) == {"short", "medium", "long"}
    parts = heard["breakdown_p50_ms"]
    assert parts["output_buffer"] > 0 and parts["lead_in"] >= 0
    assert heard["ttfa"]["p50_ms"] > parts["request_to_callback"]
    assert heard["cached"]["n"] == 2 and heard["busy_core"]["n"] == 0
    assert heard["underruns"]["trials"] >= 0 and heard["underruns"]["busy_core_trials"] == 0
    assert heard["stop"]["n"] == 2 and 0 <= heard["stop"]["p50_ms"] < 1000
    assert data["stop"] == heard["stop"] and data["stop_callback"]["n"] == 2
    # the full plays (idle, one core busy) were watched for dropouts at the device
    assert [play["busy_core"] for play in data["plays"]] == [False, True]
    for play in data["plays"]:
        assert play["audio_s"] > 1 and play["dropouts_at_device"] >= 0 and play["underruns"] >= 0
        assert play["portaudio_underflows"] >= 0
    # the daemon ran the given config (its engine), and the run records what it measured
    assert data["daemon"]["engine"] == "onnx" and data["daemon"]["failures"] == []
    assert data["settings"]["config"]["streaming"]["first_chunk_frames"] == 16
    assert data["settings"]["config"]["daemon"]["cache_mb"] >= 8  # for the cache's own row
    assert set(data["durations_s"]) == {"daemon", "peers", "engines", "wyoming"}
    assert data["daemon"]["peak_rss_mb"] > 50
    assert set(data["peers"]) >= {"piper"}
    onnx = next(row for row in data["engines"] if row["engine"] == "onnx")
    assert onnx["available"] and 0 < onnx["rtf_whole"] < 5
    assert plot.stat().st_size > 10_000
    table = io.StringIO()
    print_table(data, table)
    assert "Time to first audio" in table.getvalue() and "vs piper" in table.getvalue()
    assert "Heard at the device" in table.getvalue()
    # the Wyoming part: AutoVoice and wyoming-piper (dev extra) on the same client
    wyoming = data["wyoming"]
    for key in ("synthesize", "stream_200cps"):
        assert wyoming[key]["autovoice"]["n"] == 3 and wyoming[key]["autovoice"]["p50_ms"] > 0
        assert wyoming[key]["wyoming-piper"]["n"] == 3 and wyoming[key]["ratio_p50"] > 0
    assert [row["clients"] for row in wyoming["concurrency"]] == [1, 2]
    assert wyoming["wyoming_piper"] and wyoming["voice"].endswith(".onnx")
    out = io.StringIO()
    print_wyoming(wyoming, out)
    assert "wyoming-piper" in out.getvalue() and "x lower" in out.getvalue()

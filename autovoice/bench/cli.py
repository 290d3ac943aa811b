"""`autovoice bench`: run every measurement in one go and report it.

Thread: main. RT-safe: no.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from autovoice.bench.sentences import SENTENCES, UNIQUE_SENTENCES, all_sentences, length_class
from autovoice.bench.stats import summarize
from autovoice.config import AppConfig

__all__ = ["add_subcommand", "run_bench"]

_LOG = logging.getLogger(__name__)
_BUSY = UNIQUE_SENTENCES[1::4]
"""Unspoken sentences for the run with one core busy."""
_IDLE = tuple(text for text in UNIQUE_SENTENCES if text not in _BUSY)
"""Unspoken sentences for the headline run."""


def add_subcommand(subparsers: Any) -> None:
    """Register `bench` on the top-level parser."""
    bench = subparsers.add_parser(
        "bench", help="measure latency and throughput against piper-tts and espeak-ng"
    )
    bench.add_argument(
        "--requests",
        type=int,
        default=len(_IDLE),
        help=f"heard-latency requests, each a sentence not spoken before (at most {len(_IDLE)})",
    )
    bench.add_argument("--stops", type=int, default=12, help="stop-latency samples")
    bench.add_argument("--quick", action="store_true", help="a few requests only (smoke test)")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.add_argument("--plot", metavar="FILE.png", help="draw TTFA distributions to a PNG")
    bench.add_argument("--device", metavar="NAME|INDEX", help="audio device for the daemon")
    bench.add_argument(
        "--virtual-device",
        action="store_true",
        help="play into a private PulseAudio null sink (automatic when there is no sound device)",
    )
    bench.add_argument(
        "--config",
        metavar="FILE",
        help="configuration (YAML) for the daemon and the engines part (default: the defaults; "
        "the phrase cache is on: only its own row repeats a sentence)",
    )
    bench.add_argument("--engine", help="engine for the daemon (default: the config's)")
    bench.add_argument(
        "--threads", type=int, help="onnxruntime threads for the daemon (default: the config's)"
    )
    bench.add_argument("--no-peers", action="store_true", help="skip piper-tts and espeak-ng")
    bench.add_argument("--no-daemon", action="store_true", help="skip the end-to-end part")
    bench.add_argument(
        "--wyoming-only",
        action="store_true",
        help="run only the Wyoming part (AutoVoice vs wyoming-piper, time to first audio chunk)",
    )
    bench.add_argument("--no-wyoming", action="store_true", help="skip the Wyoming part")
    bench.add_argument(
        "--engines",
        metavar="LIST",
        help="comma-separated engines for the RTF part (default: every engine; --quick: onnx)",
    )
    bench.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Run the benchmark described by `args`; print a table or JSON. Returns the exit code."""
    config = _bench_config(args)
    requests = 9 if args.quick else max(1, args.requests)
    stops = 2 if args.quick else max(0, args.stops)
    engine_repeats = 1 if args.quick else 3
    sentences = all_sentences()
    results: dict[str, Any] = {"machine": machine_facts(), "versions": versions()}
    results["settings"] = {
        "heard_requests": requests,
        "stops": stops,
        "config": config.to_dict(),
    }
    samples: dict[str, dict[str, list[float]]] = {}
    if args.wyoming_only:
        return _wyoming_only(args, config, results, 3 if args.quick else requests)

    durations: dict[str, float] = {}
    results["durations_s"] = durations  # wall time of each part
    mark = time.monotonic()
    if not args.no_daemon:
        _progress("daemon: heard latency, stop and underruns through real PortAudio ...")
        figures = _run_daemon(args, config, _daemon_plan(args, requests, stops))
        results.update(daemon_results(figures))
        if figures.at_device:  # the headline first; the callback side is its breakdown
            samples["AutoVoice\nheard"] = _by_kind(figures.trials, "heard_ms")
        samples["AutoVoice\ncallback"] = _by_kind(figures.trials, "callback_ms")
        durations["daemon"], mark = round(time.monotonic() - mark, 1), time.monotonic()

    if not args.no_peers:
        _progress("peers: piper-tts and espeak-ng on the same sentences ...")
        results["peers"], peer_samples = _run_peers(sentences, requests)
        samples.update(peer_samples)
        durations["peers"], mark = round(time.monotonic() - mark, 1), time.monotonic()

    _progress("engines: real-time factor, streamed vs whole ...")
    engines = args.engines.split(",") if args.engines else (["onnx"] if args.quick else None)
    results["engines"] = _run_engines(config, sentences, engine_repeats, engines, args.quick)
    durations["engines"], mark = round(time.monotonic() - mark, 1), time.monotonic()

    if not args.no_wyoming:
        _progress("wyoming: AutoVoice vs wyoming-piper, time to first audio chunk ...")
        results["wyoming"] = _run_wyoming(config, 3 if args.quick else min(requests, 20))
        durations["wyoming"] = round(time.monotonic() - mark, 1)

    if args.json:
        from autovoice.bench.report import write_json

        write_json(results, sys.stdout)
    else:
        from autovoice.bench.report import print_table

        print_table(results, sys.stdout)
        if "wyoming" in results:
            from autovoice.bench.wyoming_run import print_wyoming

            print_wyoming(results["wyoming"], sys.stdout)
    if args.plot and samples:
        from autovoice.bench.report import plot_ttfa

        plot_ttfa(samples, args.plot)
        _progress(f"plot written to {args.plot}")
    failures = results.get("daemon", {}).get("failures", [])
    return 1 if failures else 0


def _wyoming_only(
    args: argparse.Namespace, config: AppConfig, results: dict[str, Any], requests: int
) -> int:
    """`bench --wyoming-only`: the Wyoming part alone."""
    _progress("wyoming: AutoVoice vs wyoming-piper, time to first audio chunk ...")
    results["wyoming"] = _run_wyoming(config, requests)
    if args.json:
        from autovoice.bench.report import write_json

        write_json(results, sys.stdout)
    else:
        from autovoice.bench.wyoming_run import print_wyoming

        print_wyoming(results["wyoming"], sys.stdout)
    return 0


def _run_wyoming(config: AppConfig, requests: int) -> dict[str, Any]:
    from autovoice.bench.wyoming_run import measure_wyoming

    with tempfile.TemporaryDirectory(prefix="autovoice-bench-cfg-") as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(config.to_dict()))
        streams = max(3, requests // 2)
        return measure_wyoming(path, requests, streams, (1, 2) if requests <= 3 else (1, 2, 3, 4))


def _bench_config(args: argparse.Namespace) -> AppConfig:
    """The configuration under test: `--config` (else the defaults) with the command's overrides.

    Raises:
        ConfigError: a bad file or override.
    """
    from autovoice.config import config_from_dict, load_config

    base = load_config(Path(args.config)) if args.config else AppConfig()
    settings = base.to_dict()
    # every measured sentence is new to the daemon; the cache has its own row
    settings["daemon"]["cache_mb"] = max(8.0, settings["daemon"]["cache_mb"])
    if args.engine is not None:
        settings["engine"] = args.engine
    if args.threads is not None:
        settings["engines"]["onnx"]["threads"] = args.threads
    return config_from_dict(settings, args.config or "bench settings")


def _daemon_plan(args: argparse.Namespace, requests: int, stops: int):
    """Which sentences and plays the daemon part measures (`bench.daemon_run.Plan`)."""
    from autovoice.bench.daemon_run import Plan

    if args.quick:  # three of each length class, no busy core, a short full play
        idle = tuple(
            text
            for kind in ("short", "medium", "long")
            for text in [t for t in _IDLE if length_class(t) == kind][:3]
        )
        return Plan(idle, (), cached_repeats=2, stops=stops, long_text=SENTENCES["medium"][1])
    return Plan(
        _IDLE[:requests],
        _BUSY,
        cached_repeats=6,
        stops=stops,
        long_text=" ".join(SENTENCES["long"][:2]),
        play_busy_unique=True,
    )


def _run_daemon(args: argparse.Namespace, app_config: AppConfig, plan):
    from autovoice.bench.daemon_run import measure_daemon

    device = None
    env: dict[str, str] = {}
    if args.virtual_device or (args.device is None and not _has_output_device()):
        from autovoice.bench.heard import start_heard_device

        device = start_heard_device()
        env = device.env
        _progress("playing into a private PulseAudio null sink, measured at its input")
    with tempfile.TemporaryDirectory(prefix="autovoice-bench-cfg-") as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(app_config.to_dict()))
        serve_args = ["--config", str(config)]
        if args.device is not None:
            serve_args += ["--device", str(args.device)]
        try:
            return measure_daemon(plan, serve_args, env, device.capture if device else None)
        finally:
            if device is not None:
                device.stop()


def _by_kind(trials, attribute: str) -> dict[str, list[float]]:
    grouped: dict[str, list[float]] = {}
    for trial in trials:
        grouped.setdefault(trial.kind, []).append(getattr(trial, attribute))
    return grouped


def played_summary(plays: list[dict[str, float]]) -> dict[str, float]:
    """Sums over sentences played to the end: how many, their audio, the callbacks the ring
    ran dry in, PortAudio underflows, dropouts at the device and the longest one."""
    return {
        "n": len(plays),
        "audio_s": round(sum(p.get("audio_s", 0.0) for p in plays), 1),
        "underruns": sum(int(p["underruns"]) for p in plays),
        "portaudio_underflows": sum(int(p["portaudio_underflows"]) for p in plays),
        "dropouts_at_device": sum(int(p.get("dropouts_at_device", 0)) for p in plays),
        "longest_dropout_ms": max((p.get("longest_dropout_ms", 0.0) for p in plays), default=0),
    }


def daemon_results(figures) -> dict[str, Any]:
    """The daemon part of the results: `heard` (the headline, at the device), `ttfa` (the
    callback side, per length class), `stop`, `plays` and `daemon`."""
    trials = figures.trials

    def p50(values: list[float]) -> float:
        return round(summarize(values).p50_ms, 2)

    heard: dict[str, Any] = {"at_device": figures.at_device, "sentences": len(trials)}
    if figures.at_device:
        heard["ttfa"] = summarize([t.heard_ms for t in trials]).to_dict()
        heard["by_length"] = {
            kind: summarize(values).to_dict()
            for kind, values in _by_kind(trials, "heard_ms").items()
        }
        heard["busy_core"] = summarize([t.heard_ms for t in figures.busy]).to_dict()
        heard["cached"] = summarize([t.heard_ms for t in figures.cached]).to_dict()
        heard["stop"] = summarize(figures.stop_ms).to_dict()
        heard["underruns"] = {
            "trials": sum(t.underruns for t in trials),
            "busy_core_trials": sum(t.underruns for t in figures.busy),
            "cached_trials": sum(t.underruns for t in figures.cached),
            "stop_trials": figures.stop_underruns,
        }
        if figures.sentence_plays:
            heard["sentences_played_busy"] = played_summary(figures.sentence_plays)
        heard["breakdown_p50_ms"] = {
            "request_to_callback": p50([t.callback_ms for t in trials]),
            "output_buffer": p50([t.buffer_ms for t in trials]),
            "lead_in": p50([t.lead_in_ms for t in trials]),
        }
    ttfa = {
        kind: {
            **summarize(values).to_dict(),
            "heard_p50_ms": p50(_by_kind(trials, "heard_ms").get(kind, [])),
        }
        for kind, values in _by_kind(trials, "callback_ms").items()
    }
    return {
        "heard": heard,
        "ttfa": ttfa,
        "stop": summarize(
            figures.stop_ms if figures.at_device else figures.stop_callback_ms
        ).to_dict(),
        "stop_callback": summarize(figures.stop_callback_ms).to_dict(),
        "plays": figures.plays,
        "daemon": {
            "engine": figures.engine,
            "startup_s": round(figures.startup_s, 2),
            "peak_rss_mb": round(figures.peak_rss_mb, 1),
            "underruns": figures.underruns,
            "output_latency_ms": figures.output_latency_ms,
            "device_rate_hz": figures.device_rate_hz,
            "channels": figures.channels,
            "failures": figures.failures,
        },
    }


def _run_peers(sentences, requests: int):
    from autovoice.bench.peers import espeak_ttfa_ms, piper_ttfa_ms
    from autovoice.engines.voice import default_voice_path

    texts = [text for _, text in sentences]
    kind_of = {text: kind for kind, text in sentences}
    per_text = 1 if requests < 20 else 3
    peers: dict[str, dict[str, Any]] = {}
    samples: dict[str, dict[str, list[float]]] = {}
    for name, timings in (
        ("piper", piper_ttfa_ms(default_voice_path(), texts, per_text)),
        ("espeak", espeak_ttfa_ms(texts, per_text)),
    ):
        if timings is None:
            continue
        grouped: dict[str, list[float]] = {}
        for text, values in timings.items():
            grouped.setdefault(kind_of[text], []).extend(values)
        peers[name] = {kind: summarize(values).to_dict() for kind, values in grouped.items()}
        samples[name] = grouped
    return peers, samples


def _run_engines(
    config: AppConfig, sentences, repeats: int, engines: list[str] | None, quick: bool
) -> list[dict[str, Any]]:
    import dataclasses

    from autovoice.bench.engines import measure_engine
    from autovoice.engines.manager import AUTO_ORDER

    texts = [text for kind, text in sentences if kind != "short"]
    if quick:
        texts = texts[::3]
    if engines is None:
        engines = list(AUTO_ORDER)
    rows = []
    for engine in engines:
        result = measure_engine(config, engine, texts, repeats)
        rows.append(dataclasses.asdict(result))
    return rows


def _has_output_device() -> bool:
    try:
        from autovoice.audio_io import list_devices

        return any(d.is_default for d in list_devices())
    except Exception:  # no PortAudio, no ALSA: treat as no device
        return False


def machine_facts() -> dict[str, Any]:
    """CPU, cores, OS and date of this run."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def versions() -> dict[str, str]:
    """Versions of the packages that matter for the figures."""
    found = {}
    for name in ("autovoice", "onnxruntime", "piper-tts", "torch", "numpy", "sounddevice"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)

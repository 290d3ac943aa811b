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
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from autovoice.bench.sentences import SENTENCES, all_sentences
from autovoice.bench.stats import summarize
from autovoice.config import AppConfig

__all__ = ["add_subcommand", "run_bench"]

_LOG = logging.getLogger(__name__)


def add_subcommand(subparsers: Any) -> None:
    """Register `bench` on the top-level parser."""
    bench = subparsers.add_parser(
        "bench", help="measure latency and throughput against piper-tts and espeak-ng"
    )
    bench.add_argument("--requests", type=int, default=50, help="requests per sentence length")
    bench.add_argument("--stops", type=int, default=20, help="stop-latency samples")
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
        "the phrase cache is always off)",
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
    requests = 3 if args.quick else max(1, args.requests)
    stops = 2 if args.quick else max(0, args.stops)
    engine_repeats = 1 if args.quick else 3
    sentences = all_sentences()
    results: dict[str, Any] = {"machine": machine_facts(), "versions": versions()}
    results["settings"] = {
        "requests_per_length": requests,
        "stops": stops,
        "config": config.to_dict(),
    }
    samples: dict[str, dict[str, list[float]]] = {}
    if args.wyoming_only:
        return _wyoming_only(args, config, results, requests)

    if not args.no_daemon:
        _progress("daemon: TTFA and stop latency through real PortAudio ...")
        figures = _run_daemon(args, config, sentences, requests, stops)
        results["ttfa"] = {
            kind: {
                **summarize(values).to_dict(),
                "heard_p50_ms": round(summarize(figures.heard_ms.get(kind, [])).p50_ms, 2),
            }
            for kind, values in figures.ttfa_ms.items()
        }
        results["stop"] = summarize(figures.stop_ms).to_dict()
        results["daemon"] = {
            "engine": figures.engine,
            "startup_s": round(figures.startup_s, 2),
            "peak_rss_mb": round(figures.peak_rss_mb, 1),
            "underruns": figures.underruns,
            "output_latency_ms": figures.output_latency_ms,
            "failures": figures.failures,
        }
        samples["autovoice"] = figures.ttfa_ms

    if not args.no_peers:
        _progress("peers: piper-tts and espeak-ng on the same sentences ...")
        results["peers"], peer_samples = _run_peers(sentences, requests)
        samples.update(peer_samples)

    _progress("engines: real-time factor, streamed vs whole ...")
    engines = args.engines.split(",") if args.engines else (["onnx"] if args.quick else None)
    results["engines"] = _run_engines(config, sentences, engine_repeats, engines, args.quick)

    if not args.no_wyoming:
        _progress("wyoming: AutoVoice vs wyoming-piper, time to first audio chunk ...")
        results["wyoming"] = _run_wyoming(config, requests)

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
    settings["daemon"]["cache_mb"] = 0  # every request is synthesised
    if args.engine is not None:
        settings["engine"] = args.engine
    if args.threads is not None:
        settings["engines"]["onnx"]["threads"] = args.threads
    return config_from_dict(settings, args.config or "bench settings")


def _run_daemon(
    args: argparse.Namespace, app_config: AppConfig, sentences, requests: int, stops: int
):
    from autovoice.bench.daemon_run import measure_daemon

    device = None
    env: dict[str, str] = {}
    if args.virtual_device or (args.device is None and not _has_output_device()):
        from autovoice.bench.virtual_audio import start_virtual_device

        device = start_virtual_device()
        env = device.env
        _progress("no sound device: playing into a private PulseAudio null sink")
    with tempfile.TemporaryDirectory(prefix="autovoice-bench-cfg-") as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(app_config.to_dict()))
        serve_args = ["--config", str(config)]
        if args.device is not None:
            serve_args += ["--device", str(args.device)]
        try:
            full_plays = 1 if args.quick else 2
            return measure_daemon(sentences, requests, stops, serve_args, env, full_plays)
        finally:
            if device is not None:
                device.stop()


def _run_peers(sentences, requests: int):
    from autovoice.bench.peers import espeak_ttfa_ms, piper_ttfa_ms
    from autovoice.engines.voice import default_voice_path

    texts = [text for _, text in sentences]
    kind_of = {text: kind for kind, text in sentences}
    per_text = max(1, requests // len(SENTENCES["short"]))
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

"""Render benchmark results: a table for people, JSON for machines, a plot of TTFA.

Thread: main. RT-safe: no.
"""

from __future__ import annotations

import json
import math
from typing import Any, TextIO

from autovoice.errors import AutoVoiceError

__all__ = ["plot_ttfa", "print_table", "write_json"]


def _fmt(value: Any, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}{unit}" if abs(value) >= 1 else f"{value:.3f}{unit}"
    return f"{value}{unit}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs or math.isnan(ours) or math.isnan(theirs):
        return "n/a"
    return f"{theirs / ours:.1f}x"


def print_table(results: dict[str, Any], out: TextIO) -> None:
    """Human-readable summary with ratios to each peer."""
    machine = results["machine"]
    out.write(f"AutoVoice benchmark — {machine['date']}\n")
    out.write(f"machine: {machine['cpu']} ({machine['cores']} cores), {machine['os']}\n")
    out.write("versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + "\n\n")

    _print_heard(results, out)
    ttfa = results.get("ttfa", {})
    peers = results.get("peers", {})
    if ttfa:
        out.write(
            "Time to first audio (ms), request written -> the callback handed the first audible"
            " sample to PortAudio\n"
        )
        out.write(
            f"{'length':8} {'n':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'heard p50':>10}"
            f" {'piper p50':>10} {'vs piper':>9} {'espeak p50':>11} {'vs espeak':>10}\n"
        )
        for kind, row in ttfa.items():
            piper = peers.get("piper", {}).get(kind, {})
            espeak = peers.get("espeak", {}).get(kind, {})
            out.write(
                f"{kind:8} {row['n']:>4} {_fmt(row['p50_ms']):>7} {_fmt(row['p95_ms']):>7}"
                f" {_fmt(row['p99_ms']):>7} {_fmt(row['heard_p50_ms']):>10}"
                f" {_fmt(piper.get('p50_ms')):>10} {_ratio(row['p50_ms'], piper.get('p50_ms')):>9}"
                f" {_fmt(espeak.get('p50_ms')):>11}"
                f" {_ratio(row['p50_ms'], espeak.get('p50_ms')):>10}\n"
            )
        out.write("(vs = peer's p50 / AutoVoice's p50: above 1x means AutoVoice is faster)\n\n")
    stop = results.get("stop_callback")
    if stop:
        out.write(
            f"Stop latency (ms), stop written -> the callback went silent: p50 "
            f"{_fmt(stop['p50_ms'])}  p95 {_fmt(stop['p95_ms'])}  p99 {_fmt(stop['p99_ms'])}"
            f"  (n={stop['n']})\n"
        )
    for play in results.get("plays", []):
        out.write(
            f"Full play of {_fmt(play['audio_s'])} s"
            f"{' (one core busy)' if play['busy_core'] else ''}: underruns {play['underruns']}"
            f", PortAudio underflows {play['portaudio_underflows']}"
            f", dropouts at the device {play.get('dropouts_at_device', 'n/a')}\n"
        )
    daemon = results.get("daemon")
    if daemon:
        out.write(
            f"Daemon: engine {daemon['engine']}, start-up to ready {_fmt(daemon['startup_s'])} s, "
            f"peak RSS {_fmt(daemon['peak_rss_mb'])} MB, underruns while speaking "
            f"{daemon['underruns']}, output latency {_fmt(daemon['output_latency_ms'])} ms\n\n"
        )
    engines = results.get("engines", [])
    if engines:
        out.write("Engines (in-process, noise off): real-time factor = compute s / audio s\n")
        out.write(
            f"{'engine':12} {'RTF streamed':>13} {'RTF whole':>10} {'ratio':>6} "
            f"{'first chunk ms':>15}\n"
        )
        for row in engines:
            if not row["available"]:
                out.write(f"{row['engine']:12} unavailable: {row['reason'][:90]}\n")
                continue
            ratio = row["rtf_streamed"] / row["rtf_whole"]
            out.write(
                f"{row['engine']:12} {_fmt(row['rtf_streamed']):>13} {_fmt(row['rtf_whole']):>10}"
                f" {ratio:>6.2f} {_fmt(row['first_chunk_ms']):>15}\n"
            )
    out.flush()


def _print_heard(results: dict[str, Any], out: TextIO) -> None:
    """The headline: what a listener hears, measured at the device."""
    heard = results.get("heard")
    if not heard:
        return
    if not heard.get("at_device"):
        out.write("Heard at the device: not measured (the daemon played to a real device)\n\n")
        return
    out.write(
        f"Heard at the device (ms), over {heard['sentences']} sentences never spoken before\n"
    )
    out.write(f"{'':34} {'n':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}\n")
    rows = [("request -> first audible sample", heard["ttfa"])]
    rows += [(f"  {kind} sentences", row) for kind, row in heard["by_length"].items()]
    rows += [
        ("  with one core busy", heard["busy_core"]),
        ("  phrase cache hit (repeats)", heard["cached"]),
        ("stop -> last audible sample", heard["stop"]),
    ]
    for name, row in rows:
        out.write(
            f"{name:34} {row['n']:>4} {_fmt(row['p50_ms']):>7} {_fmt(row['p95_ms']):>7}"
            f" {_fmt(row['p99_ms']):>7} {_fmt(row['max_ms']):>7}\n"
        )
    parts = heard["breakdown_p50_ms"]
    out.write(
        f"breakdown (p50): request -> callback handed it over {_fmt(parts['request_to_callback'])}"
        f" (of which quiet lead-in played {_fmt(parts['lead_in'])}), then the output buffer "
        f"{_fmt(parts['output_buffer'])}\n"
    )
    dry = heard.get("underruns", {})
    out.write(
        f"underruns (callbacks the ring ran dry in) during these requests: idle "
        f"{dry.get('trials', 'n/a')}, one core busy {dry.get('busy_core_trials', 'n/a')}, "
        f"cache hits {dry.get('cached_trials', 'n/a')}, stops {dry.get('stop_trials', 'n/a')}\n"
    )
    played = heard.get("sentences_played_busy")
    if played:
        out.write(
            f"the {played['n']} busy-core sentences played to the end ({played['audio_s']} s, "
            f"one core busy): underruns {played['underruns']}, PortAudio underflows "
            f"{played['portaudio_underflows']}, dropouts at the device "
            f"{played['dropouts_at_device']} (longest {played['longest_dropout_ms']} ms)\n"
        )
    out.write("\n")


def write_json(results: dict[str, Any], out: TextIO) -> None:
    """The whole result as one JSON document."""
    json.dump(results, out, indent=2, allow_nan=True)
    out.write("\n")


def plot_ttfa(samples: dict[str, dict[str, list[float]]], path: str) -> None:
    """Box plots of TTFA per system and sentence length, log scale, to a PNG."""
    try:
        import matplotlib
    except ImportError as exc:
        raise AutoVoiceError("--plot needs matplotlib: pip install 'autovoice[dev]'") from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(next(iter(samples.values())).keys())
    systems = list(samples)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 4), sharey=True)
    for ax, kind in zip(axes if len(kinds) > 1 else [axes], kinds, strict=False):
        data = [samples[s].get(kind, []) or [float("nan")] for s in systems]
        ax.boxplot(data, tick_labels=systems, showfliers=True)
        ax.set_title(f"{kind} sentences")
        ax.set_yscale("log")
        ax.axhline(100, color="red", linestyle=":", linewidth=1)
        ax.grid(True, axis="y", alpha=0.3)
    axes_list = axes if len(kinds) > 1 else [axes]
    axes_list[0].set_ylabel("time to first audio (ms, log)")
    fig.suptitle(
        "Time to first audio: AutoVoice heard at the device and at its callback; piper-tts"
        " in-process; espeak-ng to its first sample (red: the 100 ms goal)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

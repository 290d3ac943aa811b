#!/usr/bin/env python3
"""A/B heard latency of daemon configurations, interleaved, measured at the device.

Each round starts one daemon per configuration (in turn, so load drifts hit all alike) on the
bench's tee'd PulseAudio null sink (`autovoice.bench.heard`) and measures the same sentences,
each new to that daemon: request -> first audible sample, stop -> last audible sample, and
(with --long) a ~30 s play idle and with one core busy, for underruns and dropouts.

    .venv/bin/python scripts/ab_heard.py A.yaml B.yaml[+VAR=VALUE] [--rounds 2]
        [--sentences 12] [--stops 6] [--long]

(`+VAR=VALUE` after a configuration sets an environment variable of its daemons.) With
`--busy N`, N more sentences are measured with one core busy, then played to their ends (still
busy) to count underruns and dropouts after the first chunk.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from autovoice.bench.cli import _BUSY, _IDLE, played_summary
from autovoice.bench.daemon_run import Plan, measure_daemon
from autovoice.bench.heard import start_heard_device
from autovoice.bench.sentences import SENTENCES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=12)
    parser.add_argument("--stops", type=int, default=6)
    parser.add_argument("--long", action="store_true", help="play ~30 s idle and busy")
    parser.add_argument(
        "--busy", type=int, default=0, help="sentences measured, then played, with a core busy"
    )
    args = parser.parse_args()
    step = max(1, len(_IDLE) // args.sentences)
    plan = Plan(
        _IDLE[::step][: args.sentences],
        _BUSY[: args.busy],
        cached_repeats=0,
        stops=args.stops,
        long_text=" ".join(SENTENCES["long"][:2]) if args.long else "",
        warmups=2,
        play_busy_unique=args.busy > 0,
    )
    rows: dict[Path, dict[str, list[float]]] = {c: {} for c in args.configs}
    with start_heard_device() as dev:
        for round_index in range(args.rounds):
            for config in args.configs:
                path, *assignments = str(config).split("+")  # A.yaml+VAR=VALUE: environment
                env = dict(dev.env, **dict(a.split("=", 1) for a in assignments))
                figures = measure_daemon(plan, ["--config", path], env, dev.capture)
                row = rows[config]
                for name in ("heard_ms", "callback_ms", "buffer_ms", "lead_in_ms"):
                    row.setdefault(name, []).extend(getattr(t, name) for t in figures.trials)
                row.setdefault("busy_heard_ms", []).extend(t.heard_ms for t in figures.busy)
                if figures.sentence_plays:
                    played = played_summary(figures.sentence_plays)
                    for key in ("underruns", "portaudio_underflows", "dropouts_at_device"):
                        row.setdefault(f"played busy {key}", []).append(played[key])
                row.setdefault("stop_ms", []).extend(figures.stop_ms)
                row.setdefault("stop_callback_ms", []).extend(figures.stop_callback_ms)
                for play in figures.plays:
                    key = "busy" if play["busy_core"] else "idle"
                    row.setdefault(f"{key} underruns", []).append(play["underruns"])
                    row.setdefault(f"{key} dropouts", []).append(play["dropouts_at_device"])
                    row.setdefault(f"{key} underflows", []).append(play["portaudio_underflows"])
                if figures.failures:
                    print(f"round {round_index} {config}: failures {figures.failures}")
    for config, row in rows.items():
        print(f"{config}:")
        for name, values in row.items():
            if name.endswith(("underruns", "dropouts", "underflows", "at_device")):
                print(f"  {name:14} {values}")
            elif values:
                ordered = sorted(values)
                p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
                print(
                    f"  {name:14} n {len(values):3}  p50 {statistics.median(values):6.1f}"
                    f"  p95 {p95:6.1f}  max {max(values):6.1f}"
                )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Do chunks come in time with one core busy? Sentences played to their ends, A/B, interleaved.

Each round starts one daemon per configuration (in turn) on the bench's tee'd PulseAudio null
sink; each daemon answers 8 latency trials, then, with a busy-loop process holding one core, 14
more trials that are then played to their ends (`Plan.play_busy_unique`). Per configuration:
the sentences in which the ring ran dry, ring underruns, PortAudio underflows and dropouts at
the device, and heard p50 of the trials.

    .venv/bin/python scripts/ab_busy_seams.py ROUNDS A.yaml B.yaml[+VAR=VALUE] ...

(`+VAR=VALUE` after a configuration sets an environment variable of its daemons.)
"""

from __future__ import annotations

import statistics
import sys

from autovoice.bench.cli import _BUSY, _IDLE, played_summary
from autovoice.bench.daemon_run import Plan, measure_daemon
from autovoice.bench.heard import start_heard_device


def main() -> None:
    rounds, configs = int(sys.argv[1]), sys.argv[2:]
    played = (*_BUSY, *_IDLE[::3])[:14]
    plan = Plan(
        _IDLE[1::3][:8], played, cached_repeats=0, stops=0, warmups=2, play_busy_unique=True
    )
    totals = {c: {"dry": 0, "underruns": 0, "underflows": 0, "dropouts": 0} for c in configs}
    heard: dict[str, list[float]] = {c: [] for c in configs}
    with start_heard_device() as dev:
        for _ in range(rounds):
            for config in configs:
                path, *assignments = config.split("+")
                env = dict(dev.env, **dict(a.split("=", 1) for a in assignments))
                figures = measure_daemon(plan, ["--config", path], env, dev.capture)
                total, played = totals[config], played_summary(figures.sentence_plays)
                total["dry"] += sum(row["underruns"] > 0 for row in figures.sentence_plays)
                total["underruns"] += played["underruns"]
                total["underflows"] += played["portaudio_underflows"]
                total["dropouts"] += played["dropouts_at_device"]
                heard[config] += [t.heard_ms for t in figures.trials]
    for config, total in totals.items():
        print(
            f"{config}: {rounds * len(played)} sentences played with a core busy: ring dry in "
            f"{total['dry']}, underruns {total['underruns']}, PortAudio underflows "
            f"{total['underflows']}, dropouts at the device {total['dropouts']}; heard p50 "
            f"{statistics.median(heard[config]):.1f} ms (n={len(heard[config])})"
        )


if __name__ == "__main__":
    main()

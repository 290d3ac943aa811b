"""The `autovoice` command line: synth, voices (`catalogue.cli`), devices, plus the daemon's
subcommands.

Only this module configures logging. Exit codes: 0 ok, 1 runtime failure, 2 bad input or
configuration, 3 no daemon running (client commands).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from autovoice import __version__
from autovoice.cli_options import add_synthesis_options, load_app_config
from autovoice.errors import AutoVoiceError, ConfigError, VoiceError

__all__ = ["build_parser", "load_app_config", "main"]

_LOG = logging.getLogger("autovoice")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="autovoice", description="Local real-time neural text-to-speech."
    )
    parser.add_argument("--version", action="version", version=f"autovoice {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    synth = sub.add_parser("synth", help="synthesise text to a WAV file, stdout or the speakers")
    synth.add_argument("text", help="text to speak, or - to read stdin")
    synth.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="WAV file, or - for raw 16-bit PCM on stdout (default: the speakers, "
        "or autovoice.wav when there is no sound device)",
    )
    synth.add_argument("--device", metavar="NAME|INDEX", help="output device when playing")
    synth.add_argument("--whole", action="store_true", help="whole-utterance mode (no streaming)")
    add_synthesis_options(synth)
    synth.set_defaults(handler=_run_synth)

    from autovoice.catalogue.cli import add_subcommand as add_voices

    add_voices(sub)

    devices = sub.add_parser("devices", help="list audio output devices")
    devices.set_defaults(handler=_run_devices)

    from autovoice.bench.cli import add_subcommand as add_bench

    add_bench(sub)
    try:
        from autovoice.daemon.cli import add_subcommands
    except ImportError:  # the daemon package is optional while it is being built
        pass
    else:
        add_subcommands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `autovoice` command."""
    # onnxruntime >= 1.29 uploads telemetry on POSIX and retries every few seconds (DNS lookups
    # and new threads that wake an idle daemon). A local speech program sends nothing; this must
    # be set before onnxruntime is imported. ORT_DISABLE_TELEMETRY=0 in the environment wins.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    if args.command == "serve":
        level = min(level, logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.handler(args))
    except (ConfigError, VoiceError) as exc:
        print(f"autovoice: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AutoVoiceError as exc:
        print(f"autovoice: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _read_text(arg: str) -> str:
    if arg == "-":
        return sys.stdin.buffer.read().decode("utf-8", "replace")
    return arg


def _run_synth(args: argparse.Namespace) -> int:
    from autovoice.synth import synthesize_to_output

    text = _read_text(args.text)
    if not text.strip():
        print("autovoice: error: no text to speak", file=sys.stderr)
        return EXIT_USAGE
    config = load_app_config(args)
    return synthesize_to_output(config, text, args.output, whole=args.whole)


def _run_devices(args: argparse.Namespace) -> int:
    from autovoice.audio_io import list_devices

    devices = list_devices()
    if not devices:
        print("no audio output devices found", file=sys.stderr)
    for device in devices:
        mark = "*" if device.is_default else " "
        print(
            f"{mark}{device.index:3}  {device.name}  ({device.host_api}, "
            f"{device.max_output_channels} ch, {device.default_samplerate:.0f} Hz)"
        )
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

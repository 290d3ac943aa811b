"""The daemon's subcommands: `serve` and the client commands say/stop/cancel/pause/resume/status.

`autovoice.cli` registers them with `add_subcommands`. Each handler takes the parsed arguments
and returns the exit code: 0 ok (for `say --wait`: played to the end), 1 failure (an utterance
ended in error, the daemon could not start), 2 refused request or bad input, 3 no daemon
running, 4 the utterance was cancelled.
"""

from __future__ import annotations

import argparse
import codecs
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["add_subcommands"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NO_DAEMON, EXIT_CANCELLED = 0, 1, 2, 3, 4


def add_subcommands(subparsers: Any) -> None:
    """Register serve, say, stop, cancel, pause, resume and status on `subparsers`.

    Each parser gets `handler=fn` where `fn(args) -> int` is the exit code.
    """
    from autovoice.cli_options import add_synthesis_options
    from autovoice.daemon.protocol import PRIORITIES
    from autovoice.daemon.wyoming.options import add_serve_options as add_wyoming_options

    serve = subparsers.add_parser("serve", help="run the speech daemon (prints `ready` when up)")
    serve.add_argument("--socket", metavar="PATH", help="Unix socket to listen on")
    serve.add_argument(
        "--device",
        metavar="NAME|INDEX",
        help="audio output device; `null` for none (audio consumed in real time)",
    )
    serve.add_argument(
        "--ssip",
        nargs="?",
        const="",
        metavar="PATH",
        help="also speak Speech Dispatcher's protocol (spd-say, Orca) on PATH (default: "
        "$SPEECHD_ADDRESS's unix_socket, else $XDG_RUNTIME_DIR/speech-dispatcher/speechd.sock)",
    )
    add_wyoming_options(serve)
    add_synthesis_options(serve)
    serve.set_defaults(handler=run_serve)

    say = subparsers.add_parser("say", help="speak text through the daemon")
    say.add_argument("text", help="text to speak, or - to read stdin")
    say.add_argument("--wait", action="store_true", help="return when the speech ends")
    say.add_argument(
        "--stream",
        action="store_true",
        help="with -: speak stdin as it arrives (e.g. `llm ... | autovoice say --stream -`)",
    )
    say.add_argument("--json", action="store_true", help="print the events, one JSON per line")
    say.add_argument("--priority", choices=PRIORITIES, help="priority (default: message)")
    say.add_argument("--voice", metavar="V", help="voice name or path")
    say.add_argument("--speaker", metavar="N", help="speaker id or name")
    say.add_argument("--rate", type=float, metavar="R", help="speaking rate (2.0 = twice as fast)")
    say.add_argument("--volume", type=float, metavar="X", help="volume multiplier (0 .. 4)")
    _client_options(say)
    say.set_defaults(handler=run_say)

    for name, help_text, handler in (
        ("stop", "stop the utterance being spoken", run_stop),
        ("pause", "pause speech where it is", run_pause),
        ("resume", "resume paused speech", run_resume),
    ):
        cmd = subparsers.add_parser(name, help=help_text)
        _client_options(cmd)
        cmd.set_defaults(handler=handler)

    cancel = subparsers.add_parser("cancel", help="stop speaking and drop the queue")
    cancel.add_argument("utterance", nargs="?", type=int, help="cancel only this utterance")
    _client_options(cancel)
    cancel.set_defaults(handler=run_cancel)

    status = subparsers.add_parser("status", help="show the daemon's status and metrics")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    _client_options(status)
    status.set_defaults(handler=run_status)


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", metavar="PATH", help="the daemon's socket")
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="reply timeout in seconds"
    )


def _socket_path(args: argparse.Namespace) -> Path:
    from autovoice.daemon.paths import default_socket_path

    return Path(args.socket) if args.socket else default_socket_path(os.environ)


def _client(args: argparse.Namespace):
    from autovoice.daemon.client import Client

    return Client(_socket_path(args), timeout_s=args.timeout)


def _run_client(args: argparse.Namespace, action) -> int:
    """Run `action(client) -> int`, mapping a missing daemon and refusals to exit codes."""
    from autovoice.daemon.client import DaemonUnavailable
    from autovoice.errors import ProtocolError

    try:
        with _client(args) as client:
            return action(client)
    except DaemonUnavailable as exc:
        print(f"autovoice: {exc}", file=sys.stderr)
        return EXIT_NO_DAEMON
    except ProtocolError as exc:
        print(f"autovoice: the daemon refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TimeoutError as exc:
        print(f"autovoice: {exc}", file=sys.stderr)
        return EXIT_FAILURE


# -- serve -------------------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    """`autovoice serve`: run the daemon until SIGTERM/SIGINT."""
    from autovoice.cli_options import load_app_config
    from autovoice.daemon.listeners import NATIVE, SSIP, inherited_sockets, socket_path
    from autovoice.daemon.notify import Notifier
    from autovoice.daemon.paths import ENV_SOCKET, SocketInUse, default_socket_path
    from autovoice.daemon.server import Daemon, ServeOptions

    config = load_app_config(args)
    inherited = inherited_sockets(os.environ)  # socket activation: sockets bound by systemd
    if NATIVE in inherited:
        path, private = socket_path(inherited[NATIVE]), False
    elif args.socket:
        path, private = Path(args.socket), False
    elif config.daemon.socket:
        path, private = Path(config.daemon.socket), False
    else:
        path = default_socket_path(os.environ)
        private = not os.environ.get(ENV_SOCKET)
    ssip_path = None
    if SSIP in inherited:
        ssip_path = socket_path(inherited[SSIP])
    elif args.ssip is not None:
        from autovoice.daemon.ssip import ssip_path_from_env

        try:
            ssip_path = Path(args.ssip) if args.ssip else ssip_path_from_env(os.environ)
        except ValueError as exc:
            print(f"autovoice: error: --ssip: {exc}", file=sys.stderr)
            return EXIT_USAGE
    from autovoice.daemon.wyoming.options import front_end_factory

    try:
        wyoming = front_end_factory(args, config)
    except ValueError as exc:
        print(f"autovoice: error: --wyoming: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = ServeOptions(
        socket_path=path,
        private_dir=private,
        load_config=lambda: load_app_config(args),
        ssip_path=ssip_path,
        inherited=inherited,
        notifier=Notifier.from_environ(os.environ),
        front_ends=(wyoming,) if wyoming is not None else (),
    )
    try:
        code = Daemon(config, options).run()
    except SocketInUse as exc:
        print(f"autovoice: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    # Everything is released; skip interpreter teardown (tearing down torch and onnxruntime
    # takes seconds), so SIGTERM ends the process within a second as service managers expect.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- client commands ---------------------------------------------------------------------------


def run_say(args: argparse.Namespace) -> int:
    """`autovoice say`: queue text; with --wait, exit 0 only if it was played to the end."""
    from autovoice.daemon import protocol as p

    if args.stream and args.text != "-":
        print("autovoice: error: --stream reads stdin: give - as the text", file=sys.stderr)
        return EXIT_USAGE
    if args.stream:
        text: Any = stdin_pieces()
    elif args.text == "-":
        text = sys.stdin.buffer.read().decode("utf-8", "replace")
    else:
        text = args.text
    speaker: int | str | None = args.speaker
    if speaker is not None and speaker.isdigit():
        speaker = int(speaker)

    def print_event(event: p.Event) -> None:
        if args.json:
            print(json.dumps(event.to_event(), ensure_ascii=False), flush=True)

    def action(client) -> int:
        result = client.speak(
            text,
            voice=args.voice,
            speaker=speaker,
            rate=args.rate,
            volume=args.volume,
            priority=args.priority,
            wait=args.wait,
            on_event=print_event,
        )
        final = result.final
        if not args.wait or isinstance(final, p.Done):
            return EXIT_OK
        if isinstance(final, p.Cancelled):
            if not args.json:
                print(f"autovoice: cancelled ({final.reason})", file=sys.stderr)
            return EXIT_CANCELLED
        if isinstance(final, p.Error) and not args.json:
            print(f"autovoice: error: {final.code}: {final.message}", file=sys.stderr)
        return EXIT_FAILURE

    return _run_client(args, action)


def stdin_pieces(read_bytes: int = 65536) -> Iterator[str]:
    """Yield stdin's text as it arrives (whatever each read returns; UTF-8 split anywhere)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    fd = sys.stdin.fileno()
    while True:
        data = os.read(fd, read_bytes)
        text = decoder.decode(data, final=not data)
        if text:
            yield text
        if not data:
            return


def run_stop(args: argparse.Namespace) -> int:
    """`autovoice stop`."""
    return _run_client(args, lambda c: (c.stop(), EXIT_OK)[1])


def run_cancel(args: argparse.Namespace) -> int:
    """`autovoice cancel [UTTERANCE]`."""
    return _run_client(args, lambda c: (c.cancel(args.utterance), EXIT_OK)[1])


def run_pause(args: argparse.Namespace) -> int:
    """`autovoice pause`."""
    return _run_client(args, lambda c: (c.pause(), EXIT_OK)[1])


def run_resume(args: argparse.Namespace) -> int:
    """`autovoice resume`."""
    return _run_client(args, lambda c: (c.resume(), EXIT_OK)[1])


def run_status(args: argparse.Namespace) -> int:
    """`autovoice status [--json]`."""

    def action(client) -> int:
        status = client.status()
        if args.json:
            print(json.dumps(status, indent=2, ensure_ascii=False))
        else:
            print(format_status(status))
        return EXIT_OK

    return _run_client(args, action)


def format_status(s: dict[str, Any]) -> str:
    """A human-readable status summary."""
    fa = s.get("first_audio_ms") or {}
    audio = s.get("audio") or {}
    utt = s.get("utterances") or {}
    cache = s.get("cache") or {}

    def ms(value: Any) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    rtf = s.get("rtf")
    lines = [
        f"state         {s.get('state')} (pid {s.get('pid')}, up {s.get('uptime_s', 0):.0f} s, "
        f"protocol {s.get('protocol')})",
        f"voice         {s.get('voice')} on {s.get('engine')}, {s.get('sample_rate_hz')} Hz",
        f"device        {audio.get('device')!r} at {audio.get('device_rate_hz')} Hz, output "
        f"latency {audio.get('output_latency_ms')} ms, underruns {audio.get('underruns')}",
        f"output        {audio.get('output', '-')} ({audio.get('idle_stops', 0)} idle stops, "
        f"{audio.get('callbacks', 0)} callbacks)",
        f"queue         {s.get('queue_depth')} waiting, current {s.get('current')}, "
        f"{s.get('clients')} clients",
        f"utterances    {utt.get('done', 0)} spoken, {utt.get('cancelled', 0)} cancelled, "
        f"{utt.get('failed', 0)} failed, {utt.get('rejected', 0)} rejected requests",
        f"first audio   p50 {ms(fa.get('p50'))}, p95 {ms(fa.get('p95'))}, "
        f"p99 {ms(fa.get('p99'))} over {fa.get('count', 0)}",
        f"real-time     factor {'-' if rtf is None else f'{rtf:.3f}'}",
        f"cache         {cache.get('hits', 0)} hits, {cache.get('misses', 0)} misses, "
        f"{cache.get('entries', 0)} phrases, {cache.get('bytes', 0) / 1e6:.1f} of "
        f"{cache.get('capacity_bytes', 0) / 1e6:.0f} MB",
        f"memory        {s.get('rss_bytes', 0) / 2**20:.0f} MiB resident "
        f"(peak {s.get('peak_rss_bytes', 0) / 2**20:.0f} MiB)",
    ]
    return "\n".join(lines)

"""`autovoice voices`: list the voices found, browse the catalogue, install and remove voices.

    autovoice voices                          voices found (the default + the voices directory)
    autovoice voices --available [--language en] [--refresh]
    autovoice voices install NAME... [--force]
    autovoice voices remove NAME...

`--catalogue URL` (or the config's `catalogue`) names another piper-voices layout, e.g. an
offline mirror. Downloads happen only here, never while speaking. Exit codes as the CLI's: 0 ok,
1 a download or file operation failed, 2 bad input (unknown voice, bad config).

Thread: main. RT-safe: no.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import TextIO

from autovoice.errors import AutoVoiceError, ConfigError, VoiceError

__all__ = ["ProgressBar", "add_subcommand"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    """Add `voices` and its subcommands to the top-level parser."""
    voices = sub.add_parser("voices", help="list, browse, install and remove voices")
    _common(voices, argparse.SUPPRESS)
    voices.add_argument("--available", action="store_true", help="list the voice catalogue instead")
    voices.add_argument(
        "--language", metavar="CODE", help="with --available: only this language (en, en_GB)"
    )
    voices.add_argument(
        "--refresh", action="store_true", help="with --available: fetch the catalogue again"
    )
    voices.set_defaults(handler=_run_list)
    actions = voices.add_subparsers(dest="voices_command", metavar="ACTION")
    install = actions.add_parser("install", help="download voices from the catalogue")
    install.add_argument("names", nargs="+", metavar="NAME", help="voice, e.g. en_GB-alan-low")
    install.add_argument("--force", action="store_true", help="download even if installed")
    _common(install, argparse.SUPPRESS)
    install.set_defaults(handler=_run_install)
    remove = actions.add_parser("remove", help="delete installed voices")
    remove.add_argument("names", nargs="+", metavar="NAME", help="installed voice")
    _common(remove, argparse.SUPPRESS)
    remove.set_defaults(handler=_run_remove)


def _common(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--config", metavar="FILE", default=default, help="configuration file")
    parser.add_argument(
        "--catalogue", metavar="URL", default=default, help="base URL of a piper-voices layout"
    )


class ProgressBar:
    """One line per file on a terminal, redrawn at most every 0.1 s; silent elsewhere."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool | None = None) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self._drawn_at = 0.0
        self._started = 0.0

    def __call__(self, name: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done == 0:
            self._started = now
        elif done < total and now - self._drawn_at < 0.1:
            return
        self._drawn_at = now
        fraction = done / total if total else 1.0
        bar = "#" * int(fraction * 30)
        rate = done / max(now - self._started, 1e-3) / 1e6
        self.stream.write(
            f"\r{name[:40]:40} [{bar:30}] {fraction:4.0%} {done / 1e6:7.1f}/{total / 1e6:.1f} MB"
            f" {rate:5.1f} MB/s"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _settings(args: argparse.Namespace) -> tuple[str, Path]:
    """(catalogue base URL, voices directory) from the options and the config."""
    from autovoice.catalogue.catalogue import DEFAULT_CATALOGUE_URL
    from autovoice.config import find_config_path, load_config
    from autovoice.engines.voice import voices_dir_path

    config = load_config(find_config_path(getattr(args, "config", None), os.environ))
    option = getattr(args, "catalogue", None)
    url = option or config.catalogue or DEFAULT_CATALOGUE_URL
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        where = "command line" if option else config.source
        raise ConfigError(where, "catalogue", f"{url!r} is not an http://, https:// or file:// URL")
    return url, voices_dir_path(config.voices_dir)


def _catalogue(url: str, refresh: bool):
    from autovoice.catalogue.catalogue import cache_dir_path, fetch_catalogue

    catalogue = fetch_catalogue(url, cache_dir_path(), refresh=refresh)
    if catalogue.stale:
        print("autovoice: warning: catalogue unreachable, using the cached copy", file=sys.stderr)
    return catalogue


def _run_list(args: argparse.Namespace) -> int:
    if args.available:
        return _list_available(args)
    if args.language or args.refresh:
        print("autovoice: error: --language and --refresh go with --available", file=sys.stderr)
        return EXIT_USAGE
    from autovoice.config import find_config_path, load_config
    from autovoice.engines import list_voices

    config = load_config(find_config_path(getattr(args, "config", None), os.environ))
    print(f"{'NAME':28} {'LANGUAGE':9} {'RATE':>6} {'SPEAKERS':>8}  QUALITY  PATH")
    for voice in list_voices(config):
        print(
            f"{voice.name:28} {voice.language:9} {voice.sample_rate:>6} {voice.num_speakers:>8}"
            f"  {voice.quality:7}  {voice.model_path}"
        )
    return EXIT_OK


def _list_available(args: argparse.Namespace) -> int:
    from autovoice.catalogue.install import installed_names

    url, voices_dir = _settings(args)
    catalogue = _catalogue(url, args.refresh)
    installed = installed_names(voices_dir)
    voices = catalogue.by_language(args.language)
    print(f"{'NAME':40} {'LANGUAGE':9} {'QUALITY':7} {'SPEAKERS':>8} {'SIZE':>9}  INSTALLED")
    for v in voices:
        mark = "yes" if v.key in installed else ""
        print(
            f"{v.key:40} {v.language:9} {v.quality:7} {v.num_speakers:>8} "
            f"{v.size / 1e6:>6.1f} MB  {mark}"
        )
    languages = len({v.language for v in voices})
    refused = f"; {len(catalogue.refused)} bad entries left out (-v)" if catalogue.refused else ""
    print(
        f"{len(voices)} voices in {languages} languages, "
        f"{sum(v.key in installed for v in voices)} installed in {voices_dir}{refused}",
        file=sys.stderr,
    )
    return EXIT_OK


def _run_install(args: argparse.Namespace) -> int:
    from autovoice.catalogue.install import install_voice

    url, voices_dir = _settings(args)
    catalogue = _catalogue(url, refresh=False)
    if any(catalogue.get(name) is None for name in args.names) and not catalogue.stale:
        catalogue = _catalogue(url, refresh=True)  # the cached copy may predate the voice
    unknown = [name for name in args.names if catalogue.get(name) is None]
    if unknown:
        raise VoiceError(", ".join(unknown), "not in the catalogue (see voices --available)")
    progress = ProgressBar()
    status = EXIT_OK
    for name in args.names:
        voice = catalogue.get(name)
        assert voice is not None
        try:
            result = install_voice(voice, catalogue.base_url, voices_dir, progress, args.force)
        except AutoVoiceError as exc:
            print(f"autovoice: error: {voice.key}: {exc}", file=sys.stderr)
            status = EXIT_FAILURE
            continue
        verb = "installed" if result.downloaded_bytes else "already installed"
        print(f"{voice.key}: {verb} ({result.model_path})")
        _warn_if_unspeakable(result.model_path)
    return status


def _warn_if_unspeakable(model: Path) -> None:
    """Say now, not when it is first used, that the voice's phonemizer package is missing."""
    from autovoice.engines.phonemizers import missing_packages
    from autovoice.engines.voice import VoiceInfo

    try:
        problem = missing_packages(VoiceInfo.load(model))
    except VoiceError as exc:
        problem = exc.problem
    if problem:
        print(f"autovoice: warning: {model.name.removesuffix('.onnx')}: {problem}", file=sys.stderr)


def _run_remove(args: argparse.Namespace) -> int:
    from autovoice.catalogue.install import remove_voice

    _, voices_dir = _settings(args)
    for name in args.names:
        for path in remove_voice(name, voices_dir):
            print(f"removed {path}")
    return EXIT_OK

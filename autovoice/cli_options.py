"""Command-line options shared by `autovoice` and its daemon subcommands, and the config they build.

`autovoice.cli` (the parser and `main`) and `autovoice.daemon.cli` (serve, say, ...) both import
this module, so neither imports the other.
"""

from __future__ import annotations

import argparse
import os

from autovoice.config import AppConfig, config_from_dict, find_config_path, load_config

__all__ = ["add_synthesis_options", "load_app_config"]


def add_synthesis_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `synth` and `serve` (they override the config file's defaults)."""
    group = parser.add_argument_group("synthesis options")
    group.add_argument("--config", metavar="FILE", help="configuration file (YAML)")
    group.add_argument("--voice", metavar="V", help="voice name or path to a Piper .onnx")
    group.add_argument("--speaker", metavar="N", help="speaker id or name (multi-speaker voices)")
    group.add_argument(
        "--rate", type=float, metavar="R", help="speaking rate (2.0 = twice as fast)"
    )
    group.add_argument("--noise-scale", type=float, metavar="X", help="prior noise (0 = exact)")
    group.add_argument("--noise-w", type=float, metavar="X", help="duration noise (0 = exact)")
    group.add_argument("--gain", type=float, metavar="G", help="fixed output gain")
    group.add_argument(
        "--engine", choices=["auto", "onnx", "torch", "cuda-graph", "tensorrt"], help="engine"
    )
    group.add_argument("--threads", type=int, metavar="N", help="onnxruntime intra-op threads")


def load_app_config(args: argparse.Namespace) -> AppConfig:
    """Load the config file the arguments point at and apply command-line overrides.

    Raises:
        ConfigError: bad file or bad override.
    """
    path = find_config_path(getattr(args, "config", None), os.environ)
    config = load_config(path)
    overrides = config.to_dict()
    synthesis = overrides["synthesis"]
    for option, key in (
        ("rate", "rate"),
        ("noise_scale", "noise_scale"),
        ("noise_w", "noise_w"),
        ("gain", "gain"),
    ):
        value = getattr(args, option, None)
        if value is not None:
            synthesis[key] = value
    for option in ("voice", "engine"):
        value = getattr(args, option, None)
        if value is not None:
            overrides[option] = value
    speaker = getattr(args, "speaker", None)
    if speaker is not None:
        overrides["speaker"] = int(speaker) if speaker.isdigit() else speaker
    threads = getattr(args, "threads", None)
    if threads is not None:
        overrides["engines"]["onnx"]["threads"] = threads
    device = getattr(args, "device", None)
    if device is not None:
        overrides["audio"]["device"] = int(device) if str(device).isdigit() else device
    return config_from_dict(overrides, source=f"{path} + command line")

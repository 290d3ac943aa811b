"""Finding output devices: lazy PortAudio import, device listing and argument checks."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from autovoice.errors import AudioDeviceError

__all__ = [
    "LATENCY_CHOICES",
    "DeviceInfo",
    "check_device",
    "check_latency",
    "import_sounddevice",
    "list_devices",
    "resolve_output_device",
]

LATENCY_CHOICES = ("low", "high")
"""Named latency settings; a float (seconds, > 0) is accepted too."""

INSTALL_HINT = (
    "PortAudio library not found: install it (Debian/Ubuntu: apt-get install libportaudio2), "
    "or write to a file with --output FILE.wav"
)


def import_sounddevice(device: str | int | None = None) -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into one clear error.

    Args:
        device: The device asked for, only to name it in the error.

    Returns:
        The `sounddevice` module.

    Raises:
        AudioDeviceError: If PortAudio (libportaudio2) cannot be loaded, or sounddevice is absent.

    Thread: any. RT-safe: no.
    """
    try:
        import sounddevice
    except OSError as exc:  # "PortAudio library not found"
        raise AudioDeviceError(device, INSTALL_HINT) from exc
    except ImportError as exc:
        raise AudioDeviceError(
            device, "python package sounddevice missing: pip install sounddevice"
        ) from exc
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio output device, as `autovoice devices` lists it.

    Attributes:
        index: PortAudio device index (usable as `--device INDEX`).
        name: Device name (a substring of it works as `--device NAME`).
        host_api: Host API name, e.g. "ALSA", "JACK Audio Connection Kit".
        max_output_channels: Output channels the device offers.
        default_rate_hz: The device's default sample rate.
        is_default: True for the default output device.
    """

    index: int
    name: str
    host_api: str
    max_output_channels: int
    default_rate_hz: float
    is_default: bool


def list_devices() -> list[DeviceInfo]:
    """List the output devices PortAudio sees (devices with no output channels are left out).

    Returns:
        The devices, in PortAudio's index order.

    Raises:
        AudioDeviceError: If PortAudio is missing or cannot enumerate devices.

    Thread: any non-RT thread. RT-safe: no.
    """
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_out = _default_output_index(sd)
    except sd.PortAudioError as exc:
        raise AudioDeviceError(None, f"cannot list devices: {exc}") from exc
    result = []
    for dev in devices:
        if dev["max_output_channels"] <= 0:
            continue
        result.append(
            DeviceInfo(
                index=int(dev["index"]),
                name=str(dev["name"]),
                host_api=str(hostapis[dev["hostapi"]]["name"]),
                max_output_channels=int(dev["max_output_channels"]),
                default_rate_hz=float(dev["default_samplerate"]),
                is_default=int(dev["index"]) == default_out,
            )
        )
    return result


def _default_output_index(sd: ModuleType) -> int:
    try:
        return int(sd.default.device[1])
    except (TypeError, ValueError, IndexError):
        return -1


def check_latency(latency: str | float) -> str | float:
    """Validate a latency setting: "low", "high" or seconds (float > 0).

    Raises:
        ValueError: Listing the accepted values.
        TypeError: For another type.
    """
    if isinstance(latency, str):
        if latency in LATENCY_CHOICES:
            return latency
        try:
            latency = float(latency)
        except ValueError:
            raise ValueError(
                f"latency must be 'low', 'high' or seconds > 0, got {latency!r}"
            ) from None
    if isinstance(latency, bool) or not isinstance(latency, (int, float)):
        raise TypeError(f"latency must be 'low', 'high' or seconds > 0, got {latency!r}")
    if not latency > 0:
        raise ValueError(f"latency must be 'low', 'high' or seconds > 0, got {latency!r}")
    return float(latency)


def check_device(device: str | int | None) -> str | int | None:
    """Validate a device selector: None (default), an index >= 0, or a name substring.

    A string of digits is taken as an index.

    Raises:
        ValueError: For a negative index or an empty name.
        TypeError: For another type.
    """
    if device is None:
        return None
    if isinstance(device, bool) or not isinstance(device, (str, int)):
        raise TypeError(f"device must be None, an index or a name, got {device!r}")
    if isinstance(device, str):
        device = device.strip()
        if not device:
            raise ValueError("device name must not be empty")
        if device.isdigit():
            return int(device)
        return device
    if device < 0:
        raise ValueError(f"device index must be >= 0, got {device}")
    return device


def resolve_output_device(sd: ModuleType, device: str | int | None) -> dict:
    """Find the output device for a selector and return PortAudio's description of it.

    Args:
        sd: The sounddevice module.
        device: None (default output), an index, or a case-insensitive name substring.

    Returns:
        sounddevice's device dict (keys include "index", "name", "default_samplerate").

    Raises:
        AudioDeviceError: If no (unique) output device matches.

    Thread: non-RT. RT-safe: no.
    """
    try:
        if device is None:
            info = sd.query_devices(kind="output")
        elif isinstance(device, int):
            info = sd.query_devices(device)
        else:
            info = _match_name(sd, device)
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioDeviceError(device, f"no such output device ({exc})") from exc
    if info["max_output_channels"] <= 0:
        raise AudioDeviceError(device, f"{info['name']!r} has no output channels")
    return info


def _match_name(sd: ModuleType, name: str) -> dict:
    devices = [d for d in sd.query_devices() if d["max_output_channels"] > 0]
    exact = [d for d in devices if d["name"].lower() == name.lower()]
    if exact:
        return exact[0]
    matches = [d for d in devices if name.lower() in d["name"].lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        names = ", ".join(repr(d["name"]) for d in devices) or "none"
        raise ValueError(f"no output device name contains {name!r}; devices: {names}")
    names = ", ".join(repr(d["name"]) for d in matches)
    raise ValueError(f"{name!r} matches several devices: {names}")

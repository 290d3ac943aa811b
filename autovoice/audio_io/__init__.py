"""Real-time audio output: lock-free ring buffer, PortAudio callback stream, resampling, sinks.

Knows nothing of text or models; never imports `autovoice.engines` or `autovoice.daemon`.
`sounddevice` (PortAudio) is imported lazily, only when a device is listed or opened.
"""

from autovoice.audio_io.devices import DeviceInfo, import_sounddevice, list_devices
from autovoice.audio_io.events import FirstAudio, OutputStats, PlaybackEvent, UtterancePlayed
from autovoice.audio_io.output import AudioOutput
from autovoice.audio_io.resample import StreamResampler
from autovoice.audio_io.ring import RingBuffer
from autovoice.audio_io.sinks import DeviceSink, NullSink, RawStdoutSink, Sink, WavFileSink

__all__ = [
    "AudioOutput",
    "DeviceInfo",
    "DeviceSink",
    "FirstAudio",
    "NullSink",
    "OutputStats",
    "PlaybackEvent",
    "RawStdoutSink",
    "RingBuffer",
    "Sink",
    "StreamResampler",
    "UtterancePlayed",
    "WavFileSink",
    "import_sounddevice",
    "list_devices",
]

"""Voices, text frontend and inference engines (onnxruntime, PyTorch, CUDA graphs, TensorRT)."""

from autovoice.engines.base import AudioChunk, Backend, Scales
from autovoice.engines.options import SpeakOptions
from autovoice.engines.synthesizer import Synthesizer, list_voices
from autovoice.engines.voice import VoiceInfo

__all__ = [
    "AudioChunk",
    "Backend",
    "Scales",
    "SpeakOptions",
    "Synthesizer",
    "VoiceInfo",
    "list_voices",
]

"""AutoVoice: a local, real-time neural text-to-speech daemon."""

__version__ = "0.1.0"
__all__ = ["__version__"]

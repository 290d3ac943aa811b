"""`autovoice bench`: latency and throughput of AutoVoice and its peers, in one run."""

__all__: list[str] = []

"""onnxruntime backend: the voice's graph split at the latent `z` into encoder and decoder.

The Piper VITS graph is cut at the input of `dec.conv_pre` (found by node, not by tensor name, so
any Piper voice works): the encoder maps ids -> z, the decoder (HiFi-GAN, purely convolutional)
maps any window of z frames -> audio, which makes chunked streaming possible.

Thread: any; several threads may run one backend at once (onnxruntime's `run` is thread-safe).
RT-safe: no.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from autovoice.engines.base import Scales
from autovoice.engines.latent import LazyLatent
from autovoice.engines.onnx_cache import SplitCache, split_key
from autovoice.errors import EngineError, VoiceError

__all__ = ["OnnxBackend", "split_piper_graph"]

_LOG = logging.getLogger(__name__)
_DECODER_FIRST_NODE = "dec/conv_pre"
#: Context for a window of the flow when its graph does not tell (see `flow_reach_frames`).
FLOW_HALO_FRAMES = 40


@dataclass
class OnnxBackend:
    """Encoder and decoder onnxruntime sessions for one voice (see module docstring)."""

    encoder: Any
    decoder: Any
    decoder_inputs: tuple[str, ...]
    z_channels: int
    hop_samples: int = 256
    name: str = "onnx"
    prior: Any = field(default=None, repr=False)
    flow: Any = field(default=None, repr=False)
    flow_inputs: tuple[str, ...] = ()
    flow_halo_frames: int = FLOW_HALO_FRAMES
    thread_safe: ClassVar[bool] = True
    """Several threads may encode and decode at once (onnxruntime sessions allow it)."""

    @classmethod
    def load(
        cls,
        model_path: Path,
        hop_samples: int = 256,
        threads: int = 0,
        voice: Any = None,
        cache_dir: Path | None = None,
    ) -> OnnxBackend:
        """Load a Piper `.onnx`, split it, and open its sessions (prior, flow, decoder).

        Args:
            model_path: The voice's `.onnx`.
            hop_samples: Samples per latent frame (from the voice config).
            threads: Intra-op threads (0 = one per core).
            voice: The voice's `VoiceInfo`, checked against the graph when given.
            cache_dir: Where split graphs are kept between starts (`onnx_cache`; None: split
                every time).

        Raises:
            VoiceError: the file is not a loadable Piper VITS graph.
            EngineError: onnxruntime refuses the split graphs.
        """
        import onnxruntime

        started = time.monotonic()
        cache = key = None
        if cache_dir is not None:
            cache = SplitCache(Path(cache_dir))
            checked = "checked" if voice is not None else "unchecked"  # check_voice_matches
            versions = (onnxruntime.__version__, _onnx_version(), checked)
            key = split_key(model_path, Path(__file__), versions)
        cached = cache.get(key) if cache is not None and key is not None else None
        if cached is not None:
            sources: dict[str, Any] = dict(cached[0])
            facts = cached[1]
        else:
            sources, facts = _split(model_path, voice)
            if cache is not None and key is not None:
                sources = dict(cache.put(key, sources, facts) or sources)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle pool threads sleep instead of spinning: a spinning pool starves the daemon's own
        # threads (audio callback, event loop) on small machines. (One spinning pool shared by
        # all sessions was tried too: no better through the daemon, BENCHMARKS.md.)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        sessions: dict[str, Any] = {}
        try:
            for name in list(sources):  # each graph's bytes are dropped once its session is made
                source = sources.pop(name)
                source = str(source) if isinstance(source, Path) else source
                sessions[name] = onnxruntime.InferenceSession(source, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            if cached is not None and cache is not None and key is not None:
                _LOG.warning("onnx engine: cached split graphs refused (%s); splitting again", exc)
                cache.discard(key)
                return cls.load(model_path, hop_samples, threads, voice, cache_dir)
            raise EngineError(
                "onnx", f"cannot open the split graph of {model_path}: {exc}"
            ) from exc
        encoder, decoder = sessions.get("encoder"), sessions["decoder"]
        prior, flow = sessions.get("prior"), sessions.get("flow")
        decoder_inputs = tuple(i.name for i in decoder.get_inputs())
        flow_inputs = tuple(i.name for i in flow.get_inputs()) if flow is not None else ()
        _LOG.info(
            "onnx engine: %s %s at %s in %.2f s",
            "split graphs of" if cached is None else "cached split graphs of",
            model_path.name,
            facts["z_name"],
            time.monotonic() - started,
        )
        return cls(
            encoder,
            decoder,
            decoder_inputs,
            int(facts["z_channels"]),
            hop_samples,
            prior=prior,
            flow=flow,
            flow_inputs=flow_inputs,
            flow_halo_frames=int(facts["flow_halo"]) or FLOW_HALO_FRAMES,
        )

    def encode(self, phoneme_ids: list[int], scales: Scales) -> np.ndarray:
        """Phoneme ids -> z, float32 [z_channels, frames]."""
        if self.encoder is None:
            return np.asarray(self.encode_lazy(phoneme_ids, scales))
        feeds = _encoder_feeds(phoneme_ids, scales)
        (z,) = self.encoder.run(None, _only(feeds, self.encoder))
        return np.ascontiguousarray(z[0], dtype=np.float32)

    def encode_lazy(self, phoneme_ids: list[int], scales: Scales) -> np.ndarray | LazyLatent:
        """Like `encode`, but the flow runs window by window as the decoder asks for frames.

        A `LazyLatent` also carries `durations`, the latent frames of each phoneme id (the
        graph's `Ceil` node), when the prior exposes them (None otherwise).
        """
        if self.prior is None:
            return self.encode(phoneme_ids, scales)  # the flow is not separable: run it whole
        feeds = _encoder_feeds(phoneme_ids, scales)
        z_prior, mask, *rest = self.prior.run(None, _only(feeds, self.prior))
        durations = np.asarray(rest[0]).reshape(-1).astype(np.int64) if rest else None
        mask_name = self.flow_inputs[1]

        def flow(window: np.ndarray) -> np.ndarray:
            flow_feeds = {
                self.flow_inputs[0]: window[np.newaxis],
                mask_name: np.ones((1, 1, window.shape[1]), dtype=mask.dtype),
            }
            if "sid" in self.flow_inputs:
                flow_feeds["sid"] = feeds["sid"]
            return self.flow.run(None, flow_feeds)[0][0]

        return LazyLatent(
            np.ascontiguousarray(z_prior[0]), flow, self.flow_halo_frames, durations=durations
        )

    def decode(self, z: np.ndarray, speaker_id: int | None = None) -> np.ndarray:
        """z window [z_channels, frames] -> float32 PCM [frames * hop_samples]."""
        feeds: dict[str, np.ndarray] = {self.decoder_inputs[0]: z[np.newaxis].astype(np.float32)}
        if "sid" in self.decoder_inputs:
            feeds["sid"] = np.asarray([speaker_id or 0], dtype=np.int64)
        (audio,) = self.decoder.run(None, feeds)
        return audio.reshape(-1).astype(np.float32, copy=False)

    def close(self) -> None:
        """Drop the sessions."""
        self.encoder = self.decoder = self.prior = self.flow = None


def _encoder_feeds(phoneme_ids: list[int], scales: Scales) -> dict[str, np.ndarray]:
    feeds: dict[str, np.ndarray] = {
        "input": np.asarray([phoneme_ids], dtype=np.int64),
        "input_lengths": np.asarray([len(phoneme_ids)], dtype=np.int64),
        "scales": np.asarray(
            [scales.noise_scale, scales.length_scale, scales.noise_w], dtype=np.float32
        ),
    }
    if scales.speaker_id is not None:
        feeds["sid"] = np.asarray([scales.speaker_id], dtype=np.int64)
    return feeds


def _only(feeds: dict[str, np.ndarray], session: Any) -> dict[str, np.ndarray]:
    wanted = {i.name for i in session.get_inputs()}
    return {k: v for k, v in feeds.items() if k in wanted}


def _split(model_path: Path, voice: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The voice's graphs split and serialized by stage (decoder, and prior + flow or else the
    whole encoder), and the split's facts (z tensor, z channels, flow halo).

    Each graph's protobuf is dropped once serialized, which keeps the start-up peak low.

    Raises:
        VoiceError: the file is not a loadable Piper VITS graph, or `voice` does not match it.
    """
    encoder_model, decoder_model, z_name, z_channels = split_piper_graph(model_path)
    if voice is not None:
        check_voice_matches(encoder_model, voice)
    stages = split_prior_and_flow(encoder_model, z_name)
    flow_halo = flow_reach_frames(stages[1]) if stages is not None else 0
    graphs = {"decoder": decoder_model}
    if stages is None:
        graphs["encoder"] = encoder_model
    else:
        graphs["prior"], graphs["flow"] = stages
    del encoder_model, decoder_model, stages
    blobs = {name: graphs.pop(name).SerializeToString() for name in list(graphs)}
    facts = {"z_name": z_name, "z_channels": z_channels, "flow_halo": flow_halo}
    return blobs, facts


def _onnx_version() -> str:
    """Which `onnx` would split (its package file and time: cheaper than its metadata)."""
    import importlib.util

    spec = importlib.util.find_spec("onnx")
    if spec is None or spec.origin is None:
        return "?"
    return f"{spec.origin}@{os.stat(spec.origin).st_mtime_ns}"


def split_prior_and_flow(encoder_model: Any, z_name: str) -> tuple[Any, Any] | None:
    """Split the encoder into prior (ids -> z_p, mask[, durations]) and flow ((z_p, mask) -> z).

    The prior's third output, when the graph has it, is the frames per phoneme id: the output
    of the one `Ceil` node outside the flow (VITS's `w_ceil`, shape [1, 1, ids]).

    The flow's inputs are found from the graph: the mask is the other operand of the node that
    makes z (z * mask), z_p the flow's one other input computed from the graph inputs by a node
    of another module (nodes with generated names, without a module path, sit inside the flow's
    WaveNets). Returns None when the graph does not have that shape (the engine then runs the
    flow whole).
    """
    from onnx.utils import Extractor

    graph = encoder_model.graph
    producer = {out: node for node in graph.node for out in node.output}
    z_node = producer.get(z_name)
    flow_nodes = [n for n in graph.node if n.name.startswith("/flow/")]
    if z_node is None or len(z_node.input) != 2 or not flow_nodes:
        return None
    dynamic = {i.name for i in graph.input}
    for node in graph.node:  # topological order: mark what depends on the inputs
        if any(name in dynamic for name in node.input):
            dynamic.update(node.output)
    flow_outputs = {out for n in flow_nodes for out in n.output}
    mask = next((i for i in z_node.input if i not in flow_outputs), None)
    external = {
        name
        for node in flow_nodes
        for name in node.input
        if name in dynamic
        and name not in flow_outputs
        and name != mask
        and _outside_flow(producer.get(name))
    }
    priors = sorted(n for n in external if n != "sid" and "emb_g" not in n)
    if mask is None or len(priors) != 1:
        return None
    extra = ["sid"] if "sid" in {i.name for i in graph.input} else []
    try:
        extractor = Extractor(encoder_model)
        outputs = [priors[0], mask, *_durations_output(graph)]
        prior = extractor.extract_model([i.name for i in graph.input], outputs)
        flow = extractor.extract_model([priors[0], mask, *extra], [z_name])
    except Exception:  # an unexpected graph layout: run the flow whole
        _LOG.info("onnx engine: flow not separable; it runs over whole units")
        return None
    return prior, flow


def _durations_output(graph: Any) -> list[str]:
    """[the `Ceil` output that holds the frames per phoneme id], or [] when there is not one."""
    ceils = [n for n in graph.node if n.op_type == "Ceil" and not n.name.startswith("/flow/")]
    return [ceils[0].output[0]] if len(ceils) == 1 else []


def flow_reach_frames(flow_model: Any) -> int:
    """How many frames on each side of a frame the flow looks at; 0 when it cannot tell.

    The sum over the flow's convolutions of their one-sided reach, ceil((kernel - 1) * dilation
    / 2): the coupling layers and their WaveNet layers run in series, so a window of z_p with
    that much context on each side gives exactly the frames the whole flow gives. (Piper's
    flows: 4 coupling layers x 4 layers of kernel 5 -> 32 frames.) Convolutions in parallel
    would be counted twice, which only widens the halo.
    """
    import onnx

    reach = 0
    for node in flow_model.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        kernel = attrs.get("kernel_shape")
        if not kernel or len(kernel) != 1:
            return 0  # a convolution whose size the node does not say: do not guess
        dilation = (attrs.get("dilations") or [1])[0]
        span = (kernel[0] - 1) * dilation
        reach += span - span // 2
    return reach


def _outside_flow(node: Any) -> bool:
    """True for a graph input (no node) or a node with a module path outside the flow."""
    if node is None:
        return True
    return node.name.startswith("/") and not node.name.startswith("/flow/")


def check_voice_matches(encoder_model: Any, voice: Any) -> None:
    """Check the `.onnx.json` against the graph: phoneme ids in range, speakers consistent.

    Raises:
        VoiceError: the two files do not belong together.
    """
    weights = {init.name: init for init in encoder_model.graph.initializer}
    gather = next((n for n in encoder_model.graph.node if "enc_p/emb" in n.name), None)
    embedding = weights.get(gather.input[0]) if gather is not None else None
    inputs = {i.name for i in encoder_model.graph.input}
    where = str(voice.config_path)
    if embedding is not None:
        largest = max((i for ids in voice.phoneme_id_map.values() for i in ids), default=0)
        if largest >= embedding.dims[0]:
            raise VoiceError(
                where,
                f"phoneme id {largest} is beyond the model's {embedding.dims[0]} symbols "
                "(config and model do not match)",
            )
    if (voice.num_speakers > 1) != ("sid" in inputs):
        raise VoiceError(
            where,
            f"num_speakers={voice.num_speakers} but the model "
            f"{'takes' if 'sid' in inputs else 'has no'} speaker input "
            "(config and model do not match)",
        )


def split_piper_graph(model_path: Path) -> tuple[Any, Any, str, int]:
    """Split a Piper VITS ONNX model into (encoder, decoder, z tensor name, z channels).

    Raises:
        VoiceError: unreadable file, or no `dec.conv_pre` node (not a Piper VITS graph).
    """
    import onnx
    from onnx.utils import Extractor

    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # protobuf DecodeError, OSError, ...
        raise VoiceError(str(model_path), f"not a readable ONNX model ({exc})") from exc
    graph = model.graph
    conv_pre = next((n for n in graph.node if _DECODER_FIRST_NODE in n.name), None)
    input_names = [i.name for i in graph.input]
    if conv_pre is None or "input" not in input_names or len(graph.output) != 1:
        raise VoiceError(str(model_path), "not a Piper VITS voice (no dec.conv_pre node)")
    z_name = conv_pre.input[0]
    weights = {init.name: init for init in graph.initializer}
    weight = weights.get(conv_pre.input[1])
    if weight is None or len(weight.dims) != 3:
        raise VoiceError(str(model_path), "dec.conv_pre has no constant 3-D weight")
    z_channels = int(weight.dims[1])
    extractor = Extractor(model)
    encoder = extractor.extract_model(input_names, [z_name])
    decoder_inputs = [z_name] + [name for name in ("sid",) if name in input_names]
    decoder = extractor.extract_model(decoder_inputs, [graph.output[0].name])
    decoder_needs = {i.name for i in decoder.graph.input}
    if not decoder_needs <= set(decoder_inputs):
        raise VoiceError(str(model_path), f"decoder depends on {sorted(decoder_needs)}")
    return encoder, decoder, z_name, z_channels

"""The predictor's backbone through ONNX Runtime on the CPU (inference only; the heads stay in torch).

On 2 CPU threads ONNX Runtime runs the BN-folded EfficientNet-Lite0 feature
extractor about twice as fast as torch, with the same features to float
rounding. :func:`use_runtime` swaps a network's ``backbone`` for an
:class:`OnnxBackbone` (same call contract: a (B, 3, S, S) float tensor in,
the list of feature tensors out) when the runtime asks for it.

The exported graph is cached on disk (:func:`cache_dir`: ``$SURSMR_CACHE_DIR``,
else ``$XDG_CACHE_HOME/sursmr`` or ``~/.cache/sursmr``, in ``onnx/``), named by
a digest of the backbone's structure and parameters, the input size and the
torch and onnx versions, so a second load skips the export. A cached file
that does not load or whose features differ from torch's is rebuilt; when the
export itself fails (or onnx/onnxruntime are not installed) ``auto`` keeps
torch with a warning, and ``onnx`` raises :class:`RuntimeUnavailableError`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from sursmr_core.errors import InputError, ModelError, OutputError
from sursmr_core.outputs import atomic_write_bytes

if TYPE_CHECKING:
    from sursmr.models.network import SurSmrNet

RUNTIMES = ("auto", "torch", "onnx")
"""How the predictor's backbone runs: ``auto`` (ONNX Runtime on the CPU when installed, else torch)."""
RUNTIME_ENV = "SURSMR_RUNTIME"
"""Environment variable read when no runtime is given (the CLI's ``--runtime`` sets it for its workers)."""
CACHE_ENV = "SURSMR_CACHE_DIR"
OPSET = 17
GRAPH_FORMAT = 2
"""Version of what :func:`export_backbone` writes (2: NHWC outputs); part of the cache key."""
CHECK_TOLERANCE = 1e-3
"""Largest difference (relative to the features' scale) between ONNX Runtime's and torch's features at load."""

log = logging.getLogger(__name__)


class RuntimeUnavailableError(ModelError):
    """``runtime="onnx"`` was asked for but cannot be used here (missing package, CUDA device, failed export)."""


def resolve_runtime(runtime: str | None) -> str:
    """``runtime`` checked against :data:`RUNTIMES`; None reads :data:`RUNTIME_ENV` (default ``auto``)."""
    chosen = (os.environ.get(RUNTIME_ENV) or "auto") if runtime is None else runtime
    if chosen not in RUNTIMES:
        raise InputError(f"unknown runtime {chosen!r}; use one of {', '.join(RUNTIMES)}")
    return chosen


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$SURSMR_CACHE_DIR``, else ``$XDG_CACHE_HOME/sursmr`` or ``~/.cache/sursmr``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sursmr"


def _modules() -> tuple[Any, Any]:
    """(onnx, onnxruntime), imported; ImportError when either is missing."""
    import onnx
    import onnxruntime

    return onnx, onnxruntime


def onnx_available() -> bool:
    """True when onnx (export) and onnxruntime (inference) both import."""
    try:
        _modules()
    except ImportError:
        return False
    return True


class _AsTuple(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        # NHWC outputs: read back as channels-last NCHW tensors without a copy (the layout the torch network
        # gives and the stats head is fast on; NCHW features made it ~2x slower)
        return tuple(f.permute(0, 2, 3, 1) for f in self.backbone(x))


def graph_key(backbone: nn.Module, size: int) -> str:
    """Digest naming the exported graph: structure, parameters and buffers, input size, torch and onnx versions."""
    onnx, _ = _modules()
    digest = hashlib.sha256()
    digest.update(
        f"{backbone!r}\n{size}\n{torch.__version__}\n{onnx.__version__}\nopset{OPSET}\nformat{GRAPH_FORMAT}\n".encode()
    )
    for name, value in backbone.state_dict().items():
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}\n".encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def export_backbone(backbone: nn.Module, size: int) -> bytes:
    """The ONNX graph of ``backbone`` (eval) for (batch, 3, ``size``, ``size``) inputs, batch dynamic."""
    wrapper = _AsTuple(backbone).eval()
    example = torch.zeros(1, 3, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation notices about the exporter itself
        torch.onnx.export(
            wrapper,
            (example,),
            cast(Any, buffer),  # a file-like object is accepted, though typed as a path
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def _session(model: bytes | str, threads: int) -> Any:
    _, ort = _modules()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between runs: the torch head runs in between on the same cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxBackbone(nn.Module):
    """A backbone run by an ONNX Runtime session; ``torch_backbone`` serves inputs of another size."""

    def __init__(self, session: Any, torch_backbone: nn.Module, size: int, path: Path | None) -> None:
        super().__init__()
        self.session = session
        self.torch_backbone = torch_backbone
        self.size = size
        self.path = path
        self._outputs = [o.name for o in session.get_outputs()]

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.device.type != "cpu" or x.dtype != torch.float32 or tuple(x.shape[1:]) != (3, self.size, self.size):
            return list(self.torch_backbone(x))
        # NCHW contiguous float32 in (one copy from a channels-last batch); the session's NHWC arrays come out
        # as channels-last (B, C, H, W) views, without copies
        feed = x.detach().contiguous().numpy()
        return [torch.from_numpy(out).permute(0, 3, 1, 2) for out in self.session.run(self._outputs, {"x": feed})]


def _matches(session: Any, backbone: nn.Module, size: int) -> bool:
    """True when the session's features equal ``backbone``'s on a fixed input (to :data:`CHECK_TOLERANCE`)."""
    probe = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 4 - 2
    with torch.inference_mode():
        want = [w.float() for w in backbone(probe)]
    got = [out.transpose(0, 3, 1, 2) for out in session.run(None, {"x": probe.numpy()})]
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if tuple(g.shape) != tuple(w.shape):
            return False
        scale = max(1.0, float(w.abs().max()))
        if not np.isfinite(g).all() or float(np.abs(g - w.numpy()).max()) > CHECK_TOLERANCE * scale:
            return False
    return True


def onnx_backbone(backbone: nn.Module, size: int, *, threads: int | None = None) -> OnnxBackbone:
    """``backbone`` (eval, CPU) as an :class:`OnnxBackbone` for ``size``² inputs, the graph from the cache or exported.

    Raises ImportError when onnx/onnxruntime are missing and :class:`ModelError` when the export fails
    or its features differ from torch's.
    """
    threads = threads or torch.get_num_threads()
    path = cache_dir() / "onnx" / f"backbone-{graph_key(backbone, size)}.onnx"
    if path.is_file():
        try:
            session = _session(str(path), threads)
            if _matches(session, backbone, size):
                return OnnxBackbone(session, backbone, size, path)
            log.warning("cached ONNX backbone %s gives other features than torch; exporting it again", path)
        except Exception as exc:  # a truncated or foreign file: rebuilt below
            log.warning("cached ONNX backbone %s is unreadable (%s); exporting it again", path, exc)
    try:
        data = export_backbone(backbone, size)
    except Exception as exc:
        raise ModelError(f"cannot export the backbone to ONNX: {exc}") from exc
    session = _session(data, threads)
    if not _matches(session, backbone, size):
        raise ModelError("the ONNX backbone gives other features than torch")
    kept: Path | None = path
    try:
        atomic_write_bytes(path, data)
    except (OutputError, OSError) as exc:  # a read-only or full cache: this process still uses the graph it exported
        log.warning("cannot cache the ONNX backbone in %s (%s)", path.parent, exc)
        kept = None
    return OnnxBackbone(session, backbone, size, kept)


def use_runtime(model: SurSmrNet, runtime: str | None, device: torch.device, *, inference: bool) -> str:
    """Run ``model.backbone`` (a fused, eval :class:`~sursmr.models.network.SurSmrNet`'s) with ``runtime``;
    returns the runtime in use (``torch`` or ``onnx``).

    ``auto``: ONNX Runtime when ``inference`` (the weights are frozen: BN folded), ``device`` is the CPU,
    the network has a backbone and onnx + onnxruntime import; torch otherwise, with a warning when the
    export fails. ``onnx``: the same or :class:`RuntimeUnavailableError` saying why not.
    """
    chosen = resolve_runtime(runtime)
    if chosen == "torch":
        return "torch"
    config = model.config
    reason = None
    if not inference:
        reason = "the ONNX runtime is for inference only (a network with folded BatchNorms, as load() builds)"
    elif device.type != "cpu":
        reason = f"the ONNX runtime runs on the CPU only, not on {device}; use --runtime torch or --device cpu"
    elif not config.uses_backbone:
        reason = "this network has no backbone to run with ONNX Runtime"
    elif not onnx_available():
        reason = "the onnx and onnxruntime packages are not installed (pip install onnx onnxruntime)"
    if reason is not None:
        if chosen == "onnx":
            raise RuntimeUnavailableError(f"runtime onnx is unavailable: {reason}")
        return "torch"
    try:
        model.backbone = onnx_backbone(model.backbone, int(config.input_size))
    except (ModelError, ImportError, OSError, RuntimeError) as exc:
        if chosen == "onnx":
            raise RuntimeUnavailableError(f"runtime onnx is unavailable: {exc}") from exc
        warnings.warn(f"ONNX Runtime backbone unavailable, running it in torch: {exc}", RuntimeWarning, stacklevel=2)
        return "torch"
    return "onnx"

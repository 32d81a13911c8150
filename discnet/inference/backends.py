"""Inference backends: a network turned into a batch forward function (slices in, logits out).

``discnet predict --backend`` picks one. ``torch`` is eager PyTorch (channels-last memory where it pays:
:func:`channels_last_default`); ``torchscript`` traces, freezes and ``optimize_for_inference``s the network
(oneDNN fusion); ``onnxruntime`` and ``openvino`` run the ONNX export of the network on the CPU. Each
result is an ``nn.Module`` that :func:`discnet.inference.probability.disc_probability` uses like the network itself
(it keeps ``in_channels``, ``padding`` and ``input_size_for_output``); outputs equal the PyTorch path's
within :data:`TOLERANCE` (``tests/inference/test_backends.py``). The measured speeds are in
``experiments/benchmarks/results-cpu-backends.md``.

Example:
    >>> from discnet.models.unet import UNet
    >>> net = UNet(base_filters=4, depth=2).eval()
    >>> fast = prepare(net, "onnxruntime")
    >>> x = torch.rand(2, 1, 32, 32)
    >>> bool((fast(x) - net(x)).abs().max() < TOLERANCE)
    True
"""

from __future__ import annotations

import copy
import importlib.util
import io
import warnings
from collections.abc import Callable

import torch
from torch import nn

from discnet.errors import InputError

BACKENDS = ("torch", "torchscript", "onnxruntime", "openvino")
CHOICES = ("auto", *BACKENDS)
#: Largest difference of logits (and so of disc probability) allowed against eager PyTorch on the same input.
TOLERANCE = 1e-4
#: What ``auto`` runs on a CPU: eager channels-last (no build; OpenVINO and ONNX Runtime run the network faster but
#: build for about 16 s per predict call, ``results-cpu-backends.md``); GPUs run ``torch``.
CPU_AUTO = "torch"


def channels_last_default(device: str | torch.device) -> bool:
    """Whether eager PyTorch runs channels-last on ``device`` (``model.channels_last=auto``): on a GPU and
    on a CPU (measured faster on both; ``results-cpu-backends.md``).

    Example:
        >>> channels_last_default("cpu")
        True
    """
    return torch.device(device).type in ("cuda", "cpu")


class Backend(nn.Module):
    """A network run by ``backend``: ``forward(x)`` returns what the network returns (logits).

    Holds the network (the original, or its channels-last copy for eager PyTorch: its parameters tell the
    device, its shape helpers stay usable) and one compiled runner per input shape (channels, height, width; any batch size).
    """

    def __init__(self, net: nn.Module, backend: str, build: Callable[[nn.Module, torch.Tensor], Callable]):
        super().__init__()
        self.net, self.backend, self._build, self._runners = net, backend, build, {}
        self.in_channels = getattr(net, "in_channels", 1)
        self.padding = getattr(net, "padding", "same")

    def input_size_for_output(self, size: int) -> int:
        return self.net.input_size_for_output(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape[1:])  # every build takes any batch size
        if key not in self._runners:
            self._runners[key] = self._build(self.net, x)
        return self._runners[key](x)


def _channels_last(net: nn.Module, x: torch.Tensor) -> Callable:
    return lambda batch: net(batch.contiguous(memory_format=torch.channels_last))


def _torchscript(net: nn.Module, x: torch.Tensor) -> Callable:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarning for shape checks
        traced = torch.jit.trace(copy.deepcopy(net).eval(), x.float(), check_trace=False)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    return lambda batch: frozen(batch.float())


def onnx_bytes(net: nn.Module, x: torch.Tensor) -> bytes:
    """The network as an ONNX model (opset 17, dynamic batch), traced on ``x``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x.float(),),
            buffer,
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )
    return buffer.getvalue()


def _onnxruntime(net: nn.Module, x: torch.Tensor) -> Callable:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(onnx_bytes(net, x), options, providers=["CPUExecutionProvider"])
    return lambda batch: torch.from_numpy(session.run(None, {"image": batch.float().numpy()})[0])


def _openvino(net: nn.Module, x: torch.Tensor) -> Callable:
    import openvino

    model = openvino.Core().read_model(onnx_bytes(net, x))
    config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "INFERENCE_PRECISION_HINT": "f32"}
    compiled = openvino.compile_model(model, "CPU", config)
    return lambda batch: torch.from_numpy(compiled(batch.float().numpy())[0].copy())


_BUILDERS = {"torchscript": _torchscript, "onnxruntime": _onnxruntime, "openvino": _openvino}
_PACKAGES = {
    "onnxruntime": ("onnxruntime", "pip install 'discnet[onnx]'"),
    "openvino": ("openvino", "pip install 'discnet[openvino]'"),
}


def resolve(backend: str, device: str | torch.device = "cpu") -> str:
    """The backend ``backend`` names on ``device`` (``auto``: :data:`CPU_AUTO` on a CPU, ``torch`` elsewhere);
    InputError for an unknown name, a CPU-only backend on another device or a missing package."""
    if backend not in CHOICES:
        raise InputError(None, f"unknown backend '{backend}'", f"use one of {', '.join(CHOICES)}")
    kind = torch.device(device).type
    if backend == "auto":
        return CPU_AUTO if kind == "cpu" else "torch"
    if backend in ("onnxruntime", "openvino") and kind != "cpu":
        raise InputError(None, f"backend '{backend}' runs on the CPU only, not on {kind}", "use --backend torch")
    if backend in _PACKAGES and importlib.util.find_spec(_PACKAGES[backend][0]) is None:
        raise InputError(
            None, f"backend '{backend}' needs the {backend} package (not installed)", _PACKAGES[backend][1]
        )
    return backend


def prepare(
    net: nn.Module, backend: str = "torch", device: str | torch.device = "cpu", channels_last: bool | None = None
) -> nn.Module:
    """``net`` (in eval mode, on ``device``) as a module run by ``backend``; ``net`` itself is not changed.

    Args:
        backend: one of :data:`CHOICES`.
        channels_last: eager PyTorch only; default :func:`channels_last_default`.
    """
    name = resolve(backend, device)
    if name == "torch":
        if not (channels_last_default(device) if channels_last is None else channels_last):
            return net
        return Backend(copy.deepcopy(net).to(memory_format=torch.channels_last), name, _channels_last)
    return Backend(net, name, _BUILDERS[name])

"""Export a checkpoint's network to TorchScript or ONNX, for use without discnet.

The exported network is the one ``discnet predict`` runs: ``N x 1 x H x W`` float32 prepared slices in
(the checkpoint's ``hyper_parameters`` record the input preset and image size), logits
``N x C x H' x W'`` out (softmax over channels, channel 0 = background), or probabilities with
``probabilities=True``; a generic converted Keras model (not U-Net-shaped) exports what the Keras model
returns (output ``output``). A valid-padding U-Net returns a smaller output than its input; discnet feeds it
reflect-padded slices (:func:`discnet.inference.probability.segment_logits`). U-Nets export with dynamic batch,
height and width (ONNX axes ``batch``, ``height``, ``width``); generic converted Keras models are traced
at their input size with a dynamic batch. Each export is loaded back and checked against PyTorch
(ONNX: when onnxruntime is installed).

Example:
    >>> done = export_network("best.ckpt", "unet.onnx", "onnx")  # doctest: +SKIP
    >>> done.max_difference < 1e-4  # doctest: +SKIP
    True
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from discnet.convert import is_generic, load_converted
from discnet.errors import InputError
from discnet.io.atomic import atomic_path
from discnet.io.guard import refuse_existing_folder, refuse_input
from discnet.models.checkpoint import check_image_size, read_checkpoint
from discnet.models.model_settings import stored_settings
from discnet.models.unet import UNet

FORMATS = ("torchscript", "onnx")
#: Largest difference allowed between the exported and the PyTorch network on the check input, relative
#: to the output's scale (its largest magnitude, at least 1): 1e-3 on probabilities, scaled with logits.
#: fp32 ONNX kernels sum in another order than PyTorch's, 1e-4 of a deep network's output is common.
TOLERANCE = 1e-3


def allowed_difference(expected: np.ndarray) -> float:
    """The largest difference an export may show from ``expected`` (PyTorch's output on the check input).

    Example:
        >>> allowed_difference(np.array([0.2, 0.9])), allowed_difference(np.array([-40.0, 12.0]))
        (0.001, 0.04)
    """
    return TOLERANCE * max(1.0, float(np.abs(expected).max(initial=0.0)))


@dataclass
class Export:
    """What was written: the file, the check input's shape, the output name and the measured difference
    (None when ONNX could not be checked for lack of onnxruntime)."""

    path: Path
    input_shape: tuple[int, ...]
    output: str
    max_difference: float | None


def _input_shape(net: nn.Module, size: int) -> tuple[int, int, int, int]:
    if isinstance(net, UNet):
        side = net.input_size_for_output(size) if net.padding == "valid" else net.valid_input_size(size)
        return (1, net.down[0][0].in_channels, side, side)
    height, width, channels = net.graph.input_shape
    return (1, channels, height or size, width or size)


def _trace(module: nn.Module, x: torch.Tensor, path: Path) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarning for shape checks, deprecation notices
        traced = torch.jit.trace(module, x, check_trace=False)
    traced.save(str(path))
    with torch.no_grad():
        return torch.jit.load(str(path))(x)


def _onnx(module: nn.Module, x: torch.Tensor, path: Path, output: str, dynamic_size: bool) -> np.ndarray | None:
    if importlib.util.find_spec("onnx") is None:
        raise InputError(None, "ONNX export needs the onnx package (not installed)", "pip install 'discnet[onnx]'")
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (x,),
            str(path),
            dynamo=False,  # the TorchScript-based exporter: seconds, not minutes, and dynamic axes
            input_names=["image"],
            output_names=[output],
            dynamic_axes={"image": axes, output: axes},
            opset_version=17,
        )
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x.numpy()})[0]


def _exported(fmt: str, module: nn.Module, x: torch.Tensor, path: Path, output: str, generic: bool):
    """Write the export to ``path``; its output on ``x`` (None: unchecked). Any exporter failure is one line."""
    try:
        if fmt == "torchscript":
            return _trace(module, x, path)
        return _onnx(module, x, path, output, dynamic_size=not generic)
    except InputError:
        raise
    except Exception as err:  # the exporters raise many types (RuntimeError, onnx checker, onnxruntime)
        first = (str(err).strip().splitlines() or [""])[0]
        raise InputError(
            None, f"{fmt} export failed ({type(err).__name__}: {first})", "try --format torchscript, or --debug"
        ) from err


def export_network(
    checkpoint: str | Path, out: str | Path, fmt: str, *, image_size: int | None = None, probabilities: bool = False
) -> Export:
    """Export the network of ``checkpoint`` (trained or converted) as ``fmt`` (torchscript or onnx) to ``out``.

    Args:
        image_size: side of the check (and trace) input; default the image size the checkpoint (or its
            run's ``config.yaml``) records, else 256 (valid padding: the input side giving that output side).
        probabilities: append a softmax over channels.
    """
    if fmt not in FORMATS:
        raise InputError(None, f"unknown export format '{fmt}'", f"use one of {', '.join(FORMATS)}")
    refuse_existing_folder(out)
    refuse_input(out, [checkpoint])
    generic = is_generic(read_checkpoint(checkpoint))
    if generic and probabilities:
        raise InputError(
            checkpoint, "is a generic converted Keras model: it exports the Keras outputs", "drop --probabilities"
        )
    net, stored = load_converted(checkpoint, keras_outputs=generic)
    module = nn.Sequential(net, nn.Softmax(dim=1)).eval() if probabilities else net
    # The check input's side: the flag, else the model's own (checkpoint or run config), else 256.
    recorded = None if image_size else stored_settings(checkpoint, stored).get("image_size")
    shape = _input_shape(net, image_size or (check_image_size(recorded, checkpoint) if recorded is not None else 256))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = module(x)
    output = "output" if generic else "probabilities" if probabilities else "logits"
    allowed = allowed_difference(expected.numpy())
    with atomic_path(out) as tmp:
        got = _exported(fmt, module, x, tmp, output, generic)
        diff = None if got is None else float(np.abs(np.asarray(got) - expected.numpy()).max())
        if diff is not None and not diff <= allowed:
            raise InputError(
                out,
                f"the exported network differs from PyTorch by {diff:.3g} (allowed {allowed:.3g}); nothing written",
                "try --format torchscript, or another opset/onnxruntime version",
            )
    return Export(Path(out), tuple(shape), output, diff)

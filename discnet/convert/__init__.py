"""Use Keras models, such as the paper's released TensorFlow 2.8 model (section 4.5), in discnet.

- :func:`keras_to_torch` reads a Keras file (h5py and the saved JSON config only; no TensorFlow, no Keras
  code) and returns a PyTorch module computing what the Keras model computes, channels first.
- :func:`convert_keras` writes a discnet checkpoint. A Keras U-Net shaped like discnet's
  (see :mod:`discnet.convert.unet_map`) becomes a normal U-Net checkpoint: ``discnet predict`` and
  ``train.py model.init_from=...`` (fine-tuning) use it like a trained one. Any other supported model is
  written as a *generic* converted model (its layer graph + weights): :func:`load_converted` and
  ``discnet export`` read it; predict and fine-tuning need the U-Net shape and refuse it.

A converted U-Net returns discnet logits (softmax over channels, channel 0 = background); a Keras
one-channel sigmoid output ``z`` becomes the logits ``[0, z]`` (same disc probability).

Example:
    >>> net = keras_to_torch("tests/fixtures/keras/k3_unet_same.keras")  # doctest: +SKIP
    >>> net(torch.zeros(1, 1, 32, 32)).shape  # doctest: +SKIP
    torch.Size([1, 2, 32, 32])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from discnet.convert.keras_model import KerasGraphNet
from discnet.convert.keras_weights import KerasModel, read_keras
from discnet.convert.unet_map import KerasUNet, NotAUNet, UNetMapping, map_unet
from discnet.errors import InputError
from discnet.io.atomic import atomic_path
from discnet.io.guard import refuse_existing_folder, refuse_input
from discnet.models.checkpoint import PREFIX, load_net, load_weights, read_checkpoint
from discnet.models.unet import UNet

__all__ = ["Conversion", "KerasGraphNet", "KerasUNet", "convert_keras", "keras_to_torch", "load_converted"]
__all__ += ["is_generic", "read_keras", "map_unet", "NotAUNet"]

#: Largest difference allowed between the U-Net mapping and the generic graph on a random input.
TOLERANCE = 1e-4


def graph_net(model: KerasModel, logits: bool = False) -> KerasGraphNet:
    """The generic module of a read Keras model, weights loaded, in eval mode."""
    net = KerasGraphNet(model.graph, logits=logits)
    net.load_keras_weights(model.weights)
    return net.eval()


def _unet(mapping: UNetMapping) -> UNet:
    net = UNet(**mapping.kwargs)
    net.load_state_dict(mapping.state_dict)
    return net.eval()


def _probe_size(net: UNet) -> int:
    return net.input_size_for_output(8) if net.padding == "valid" else 2 * 2**net.depth


def unet_mapping(model: KerasModel) -> tuple[UNetMapping | None, str | None]:
    """``(mapping, None)`` when the model maps onto discnet's U-Net (checked on a random input against the
    generic module), else ``(None, reason)``."""
    try:
        mapping = map_unet(model)
    except NotAUNet as err:
        return None, str(err)
    net = _unet(mapping)
    size = _probe_size(net)
    x = torch.rand(1, mapping.kwargs["in_channels"], size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float((KerasUNet(net, mapping.head)(x) - graph_net(model)(x)).abs().max())
    if not diff <= TOLERANCE:
        return None, f"the U-Net mapping differs from the Keras graph by {diff:.3g}"
    return mapping, None


def keras_to_torch(path: str | Path, config: str | Path | None = None, *, generic: bool = False) -> nn.Module:
    """A PyTorch module computing what the Keras model at ``path`` computes (N x C x H x W, channels first).

    Args:
        path: ``.h5``, ``.keras``, ``.weights.h5`` (config beside it or in ``config``), or a SavedModel
            folder (needs TensorFlow).
        config: the model config JSON for bare weight files.
        generic: always return the generic graph module, even for a model that maps onto the U-Net.

    Returns a :class:`KerasUNet` (discnet's ``UNet`` as ``.net``) when the model maps, else a
    :class:`KerasGraphNet`; in eval mode. Raises InputError for unreadable or unsupported models.
    """
    model = read_keras(path, config)
    if not generic:
        mapping, _ = unet_mapping(model)
        if mapping is not None:
            return KerasUNet(_unet(mapping), mapping.head).eval()
    return graph_net(model)


@dataclass
class Conversion:
    """What :func:`convert_keras` wrote: a U-Net (``net`` = its arguments) or a generic model (``reason``)."""

    output: Path
    net: dict | None
    reason: str | None
    head: str
    input: dict
    image_size: int | None
    notes: list[str] = field(default_factory=list)

    def train_overrides(self) -> list[str]:
        """``train.py`` overrides that rebuild this U-Net and start from its weights (fine-tuning)."""
        if self.net is None:
            return []
        keys = ("base_filters", "depth", "num_classes", "dropout", "dilation", "norm", "padding")
        out = [f"model.init_from={self.output}", *(f"model.net.{k}={self.net[k]}" for k in keys)]
        return out + [f"image_size={self.image_size}", f"input={self.input['name']}"]


def _image_size(path: Path, model: KerasModel, kwargs: dict | None, image_size: int | None) -> int | None:
    height, width = model.graph.input_shape[:2]
    if image_size is None and height is not None and height == width:
        image_size = height  # slices at the scale the Keras model saw (valid padding: discnet adds the margin)
    if image_size is not None and image_size < 8:
        raise InputError(path, f"image size {image_size} is too small", "give the side the slices are resized to")
    if kwargs is None:
        return image_size
    if image_size is None:
        raise InputError(
            path,
            f"has input size {height} x {width} (None: any), so the square size slices are resized to is unknown",
            "pass --image-size (the paper: 512)",
        )
    if kwargs["padding"] == "same" and image_size % 2 ** kwargs["depth"]:
        raise InputError(
            path, f"image size {image_size} does not fit the model", f"give a multiple of {2 ** kwargs['depth']}"
        )
    return int(image_size)


def _input(preset: str, scale: float | None) -> dict:
    from discnet.data.preprocess import input_presets, preset_names

    if preset not in preset_names():
        raise InputError(None, f"unknown input preset '{preset}'", f"use one of {', '.join(preset_names())}")
    cfg = input_presets()[preset] if scale is None else dataclasses.replace(input_presets()[preset], scale=float(scale))
    return dataclasses.asdict(cfg)


def convert_keras(
    path: str | Path,
    out: str | Path,
    *,
    config: str | Path | None = None,
    input_preset: str = "stretched",
    input_scale: float | None = None,
    image_size: int | None = None,
    generic: bool = False,
) -> Conversion:
    """Convert a Keras model into a discnet checkpoint at ``out`` (written atomically).

    Args:
        path, config: the Keras model (see :func:`keras_to_torch`).
        input_preset: how scans are prepared for it (``conf/input``; the paper's final model: stretched).
        input_scale: factor on the prepared intensities (default the preset's 1/255, giving [0, 1]).
        image_size: side the slices are resized to; default the Keras input side (a valid-padding U-Net
            is then fed reflect-padded slices, as in :func:`discnet.inference.probability.segment_logits`). Required
            for a U-Net that accepts any size.
        generic: write the generic model even when the U-Net mapping applies.
    """
    path, out = Path(path), Path(out)
    refuse_existing_folder(out)
    refuse_input(out, [path, config])
    model = read_keras(path, config)
    mapping, reason = (None, "generic conversion asked for") if generic else unet_mapping(model)
    kwargs = mapping.kwargs if mapping else None
    size = _image_size(path, model, kwargs, image_size)
    hyper = {"input": _input(input_preset, input_scale), "image_size": size}
    if mapping is not None:
        hyper["net"], state, head = kwargs, mapping.state_dict, mapping.head
    else:
        net = graph_net(model)
        hyper["keras_graph"], state, head = model.graph.to_dict(), net.state_dict(), "keras"
    notes = list(mapping.notes) if mapping else []
    keras = {"source": str(path), "format": model.format, "keras_version": model.keras_version, "output": head}
    keras |= {"notes": notes, "batch_norm": mapping.batch_norm if mapping else None, "not_unet": reason}
    checkpoint = {"state_dict": {PREFIX + k: v for k, v in state.items()}, "hyper_parameters": hyper, "keras": keras}
    with atomic_path(out) as tmp:
        torch.save(checkpoint, tmp)
    return Conversion(out, kwargs, reason, head, hyper["input"], size, notes)


def is_generic(checkpoint: dict) -> bool:
    """Whether a checkpoint holds a generic converted Keras model (not a U-Net)."""
    hyper = checkpoint.get("hyper_parameters") or {}
    return not isinstance(hyper.get("net"), dict) and isinstance(hyper.get("keras_graph"), dict)


def load_converted(path: str | Path, *, keras_outputs: bool = False) -> tuple[nn.Module, dict]:
    """The network of a checkpoint written by :func:`convert_keras` (or by training), in eval mode, loaded
    with ``weights_only=True``; returns ``(net, checkpoint)``.

    A U-Net returns discnet logits. A generic converted model returns logits too (its final softmax left
    out, a one-channel sigmoid ``z`` as ``[0, z]``), or with ``keras_outputs`` what the Keras model returns.
    """
    checkpoint = read_checkpoint(path)
    if not is_generic(checkpoint):
        return load_net(path)
    try:
        net = KerasGraphNet(checkpoint["hyper_parameters"]["keras_graph"], logits=not keras_outputs)
    except ValueError as err:
        raise InputError(path, f"cannot give discnet logits: {err}", "load it with keras_outputs=True") from err
    except (KeyError, TypeError, IndexError, StopIteration) as err:
        raise InputError(path, f"holds an unusable converted Keras graph ({err})", "convert the model again") from err
    load_weights(net, checkpoint, path)
    return net.eval(), checkpoint

"""Run a parsed Keras graph with PyTorch, channels first: the generic converted model.

Each supported layer has a counterpart reproducing TensorFlow's arithmetic: "same" padding puts the odd
pixel at the bottom/right, transposed convolutions have Keras' output size, batch norm keeps the Keras
epsilon (its momentum ``m`` becomes PyTorch's ``1 - m``), softmax and concatenation act on the channel
dimension. Dropout layers act only in training mode; Gaussian noise layers are left out.

Example:
    >>> from discnet.convert.keras_config import Graph, Layer
    >>> g = Graph("m", [Layer("in", "InputLayer", {"shape": [None, None, 1]}),
    ...                 Layer("up", "UpSampling2D", {"size": [2, 2], "interpolation": "nearest"}, ["in"])],
    ...           "in", "up", [None, None, 1])
    >>> KerasGraphNet(g)(torch.zeros(1, 1, 3, 4)).shape
    torch.Size([1, 1, 6, 8])
"""

from __future__ import annotations

import functools
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from discnet.convert.keras_config import Graph, Layer

_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, dim=1),
    "tanh": torch.tanh,
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "gelu": F.gelu,
    "exponential": torch.exp,
    "relu6": F.relu6,
    # discnet's logits for a one-channel sigmoid output z: softmax([0, z])[1] == sigmoid(z)
    "sigmoid_logits": lambda x: torch.cat((torch.zeros_like(x), x), dim=1),
}


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) of one axis; the odd pixel goes after.

    Example:
        >>> same_pads(32, 3, 2, 1), same_pads(16, 4, 2, 1)
        ((0, 1), (1, 1))
    """
    span = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _tensor(value: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(value), dtype=torch.float32)


class Act(nn.Module):
    """A Keras activation by name (softmax over channels)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def forward(self, x):
        return _ACTIVATIONS[self.name](x)


class Conv(nn.Module):
    """Conv2D (kernel ``(kh, kw, in, out)`` -> ``(out, in, kh, kw)``)."""

    def __init__(self, s: dict):
        super().__init__()
        self.s = s
        self.conv = nn.Conv2d(
            s["in_channels"], s["filters"], s["kernel"], s["strides"], 0, s["dilation"], s["groups"], s["use_bias"]
        )
        self.act = Act(s["activation"])

    def load(self, w: dict) -> None:
        self.conv.weight.copy_(_tensor(w["kernel"].transpose(3, 2, 0, 1)))
        if self.conv.bias is not None:
            self.conv.bias.copy_(_tensor(w["bias"]))

    def forward(self, x):
        s = self.s
        if s["padding"] == "same":
            (kh, kw), (sh, sw), (dh, dw) = s["kernel"], s["strides"], s["dilation"]
            x = F.pad(x, (*same_pads(x.shape[-1], kw, sw, dw), *same_pads(x.shape[-2], kh, sh, dh)))
        return self.act(self.conv(x))


class ConvTranspose(nn.Module):
    """Conv2DTranspose (kernel ``(kh, kw, out, in)`` -> ``(in, out, kh, kw)``) with Keras' output size."""

    def __init__(self, s: dict):
        super().__init__()
        self.s = s
        self.weight = nn.Parameter(torch.zeros(s["in_channels"], s["filters"], *s["kernel"]))
        self.bias = nn.Parameter(torch.zeros(s["filters"])) if s["use_bias"] else None
        self.act = Act(s["activation"])

    def load(self, w: dict) -> None:
        self.weight.copy_(_tensor(w["kernel"].transpose(3, 2, 0, 1)))
        if self.bias is not None:
            self.bias.copy_(_tensor(w["bias"]))

    def _fit(self, y: torch.Tensor, axis: int, n: int) -> torch.Tensor:
        k, stride, d = self.s["kernel"][axis], self.s["strides"][axis], self.s["dilation"][axis]
        span = (k - 1) * d + 1
        if self.s["padding"] == "same":
            target = n * stride
            before = max((n - 1) * stride + span - target, 0) // 2
        else:
            target, before = n * stride + max(span - stride, 0), 0
        dim = 2 + axis
        y = y.narrow(dim, before, min(target, y.shape[dim] - before))
        if y.shape[dim] < target:  # a kernel shorter than the stride leaves zeros at the end
            pad = [0, 0, 0, 0]
            pad[3 - 2 * axis] = target - y.shape[dim]
            y = F.pad(y, pad)
        return y

    def forward(self, x):
        y = F.conv_transpose2d(x, self.weight, None, self.s["strides"], dilation=self.s["dilation"])
        y = self._fit(self._fit(y, 0, x.shape[-2]), 1, x.shape[-1])
        if self.bias is not None:
            y = y + self.bias[:, None, None]
        return self.act(y)


class BatchNorm(nn.BatchNorm2d):
    """BatchNormalization with the Keras epsilon; missing gamma/beta (scale/center off) stay 1/0."""

    def __init__(self, s: dict):
        super().__init__(s["channels"], eps=s["epsilon"], momentum=1.0 - s["momentum"])

    def load(self, w: dict) -> None:
        self.weight.copy_(_tensor(w.get("gamma", np.ones(self.num_features))))
        self.bias.copy_(_tensor(w.get("beta", np.zeros(self.num_features))))
        self.running_mean.copy_(_tensor(w["moving_mean"]))
        self.running_var.copy_(_tensor(w["moving_variance"]))


class Elementwise(nn.Module):
    """ReLU/LeakyReLU/ELU/Softmax/Rescaling layers, pooling, resizing, cropping and merging layers."""

    def __init__(self, kind: str, s: dict):
        super().__init__()
        self.kind, self.s = kind, s

    def forward(self, *xs):
        kind, s, x = self.kind, self.s, xs[0]
        if kind == "ReLU":
            y = torch.where(x >= s["threshold"], x, s["negative_slope"] * (x - s["threshold"]))
            return y if s["max_value"] is None else torch.clamp(y, max=s["max_value"])
        if kind == "LeakyReLU":
            return F.leaky_relu(x, s["negative_slope"])
        if kind == "ELU":
            return F.elu(x, s["alpha"])
        if kind == "Softmax":
            return torch.softmax(x, dim=s["dim"])
        if kind == "Rescaling":
            return x * s["scale"] + s["offset"]
        if kind == "MaxPooling2D":
            if s["padding"] == "same":
                top = same_pads(x.shape[-2], s["pool"][0], s["strides"][0], 1)
                left = same_pads(x.shape[-1], s["pool"][1], s["strides"][1], 1)
                x = F.pad(x, (*left, *top), value=float("-inf"))
            return F.max_pool2d(x, s["pool"], s["strides"])
        if kind == "AveragePooling2D":
            return F.avg_pool2d(x, s["pool"], s["strides"])
        if kind == "UpSampling2D":
            bilinear = s["interpolation"] == "bilinear"
            return F.interpolate(
                x, scale_factor=s["size"], mode=s["interpolation"], align_corners=False if bilinear else None
            )
        if kind == "Cropping2D":
            (t, b), (left, r) = s["margins"]
            return x[..., t : x.shape[-2] - b, left : x.shape[-1] - r]
        if kind == "ZeroPadding2D":
            (t, b), (left, r) = s["margins"]
            return F.pad(x, (left, r, t, b))
        if kind == "Concatenate":
            return torch.cat(xs, dim=s["dim"])
        if kind == "Subtract":
            return xs[0] - xs[1]
        if kind == "Average":
            return functools.reduce(torch.add, xs) / len(xs)
        merge = {"Add": torch.add, "Multiply": torch.mul, "Maximum": torch.maximum, "Minimum": torch.minimum}
        return functools.reduce(merge[kind], xs)  # broadcasting as Keras' merge layers


def build_module(layer: Layer) -> nn.Module:
    """The PyTorch module of one (non-input) layer."""
    kind, s = layer.kind, layer.settings
    if kind == "Conv2D":
        return Conv(s)
    if kind == "Conv2DTranspose":
        return ConvTranspose(s)
    if kind == "BatchNormalization":
        return BatchNorm(s)
    if kind == "Activation":
        return Act(s["activation"])
    if kind == "Dropout":
        return nn.Dropout(s["rate"])
    if kind == "SpatialDropout2D":
        return nn.Dropout2d(s["rate"])
    if kind == "Noise":
        return nn.Identity()
    return Elementwise(kind, s)


def _logits_layer(graph: Graph) -> Layer | None:
    """The layer applying the final softmax/sigmoid (seen through trailing crops and dropout); None when
    the model already returns logits (a linear output)."""
    layer = graph.layer(graph.output)
    while layer.kind in ("Cropping2D", "Dropout", "SpatialDropout2D", "Noise"):
        layer = graph.layer(layer.inputs[0])
    act = layer.settings.get("activation") if layer.kind != "Softmax" else "softmax"
    if layer.kind == "Softmax" and layer.settings["dim"] != 1:
        act = None
    single = layer.kind not in ("Conv2D", "Conv2DTranspose") or layer.settings["filters"] == 1
    if act == "softmax" or (act == "sigmoid" and single):
        return layer
    if act == "linear":
        return None
    raise ValueError("the model's output is not logits, a softmax over channels or a one-channel sigmoid")


class KerasGraphNet(nn.Module):
    """A Keras model as a PyTorch module: ``N x C x H x W`` in, what Keras returns (channels first) out.

    Args:
        graph: the parsed graph (or its :meth:`Graph.to_dict`).
        logits: return discnet logits instead (softmax left out; a one-channel sigmoid ``z`` becomes the
            two channels ``[0, z]``), as :func:`discnet.inference.probability.disc_probability` expects.
    """

    def __init__(self, graph: Graph | dict, logits: bool = False):
        super().__init__()
        self.graph = Graph.from_dict(graph) if isinstance(graph, dict) else graph
        self.layers = nn.ModuleDict()
        self.steps: list[tuple[str, str, list[str]]] = []
        self.names: dict[str, str] = {}
        for layer in self.graph.layers[1:]:
            key = "k_" + re.sub(r"\W", "_", layer.name)
            while key in self.layers:
                key += "_"
            self.layers[key] = build_module(layer)
            self.steps.append((key, layer.name, list(layer.inputs)))
            self.names[layer.name] = key
        if logits and (layer := _logits_layer(self.graph)) is not None:
            self._to_logits(layer)

    def _to_logits(self, layer: Layer) -> None:
        module = self.layers[self.names[layer.name]]
        sigmoid = layer.settings.get("activation") == "sigmoid"
        if isinstance(module, Conv | ConvTranspose):
            module.act = Act("sigmoid_logits" if sigmoid else "linear")
        else:
            self.layers[self.names[layer.name]] = Act("sigmoid_logits" if sigmoid else "linear")

    @torch.no_grad()
    def load_keras_weights(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        """Copy Keras weights (by layer name and role, as :func:`~discnet.convert.keras_weights.read_keras`
        gives them) into the modules."""
        for name, values in weights.items():
            self.layers[self.names[name]].load(values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.graph.input: x}
        for key, name, inputs in self.steps:
            values[name] = self.layers[key](*[values[i] for i in inputs])
        return values[self.graph.output]

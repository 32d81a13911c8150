"""Map a parsed Keras U-Net onto discnet's :class:`~discnet.models.unet.UNet`, weights included.

A Keras model maps when it has exactly the U-Net's shape: per level two 3x3 stride-1 convolutions, each
followed by ReLU (in the layer or as an Activation/ReLU layer) or by BatchNormalization then ReLU, 2x2
max pooling, a bottleneck, 2x2 stride-2 linear Conv2DTranspose up steps halving the width, concatenation
with the (centre-cropped, for valid padding) skip in either order, and a final 1x1 convolution with
softmax, a one-channel sigmoid, or no activation (logits). Widths double per level; padding, dilation
and batch norm are the same everywhere. Anything else raises :class:`NotAUNet` (use the generic module).

Exact re-expressions: a convolution bias before batch norm moves into the running mean; the Keras
batch-norm epsilon moves into the running variance (``var + eps_keras - eps_torch``); a (up, skip)
concatenation permutes the next convolution's input channels; a one-channel sigmoid ``z`` becomes the two
logits ``[0, z]``. Dropout found elsewhere than after the bottleneck is dropped (noted; inference is
unaffected).

Example:
    >>> from discnet.convert.keras_weights import read_keras
    >>> m = map_unet(read_keras("tests/fixtures/keras/k3_unet_same.keras"))  # doctest: +SKIP
    >>> m.kwargs["base_filters"], m.head  # doctest: +SKIP
    (4, 'softmax')

Over 300 lines because it is one table: every Keras layer of the paper's U-Net family mapped onto
discnet's parameters, with the checks that the two architectures match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from discnet.convert.keras_config import Graph, Layer
from discnet.convert.keras_weights import KerasModel
from discnet.models.unet import UNet

_NOISE = ("Dropout", "SpatialDropout2D", "Noise")


class NotAUNet(Exception):
    """The Keras model is not shaped like discnet's U-Net (the message says where)."""


@dataclass
class UNetMapping:
    """UNet keyword arguments, its state dict, the Keras output kind and conversion notes."""

    kwargs: dict
    state_dict: dict[str, torch.Tensor]
    head: str
    notes: list[str] = field(default_factory=list)
    batch_norm: dict | None = None


class KerasUNet(nn.Module):
    """discnet's U-Net (``.net``, logits) returning what the Keras model returns (``head``)."""

    def __init__(self, net: UNet, head: str):
        super().__init__()
        self.net, self.head = net, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        if self.head == "softmax":
            return torch.softmax(z, dim=1)
        if self.head == "sigmoid":
            return torch.softmax(z, dim=1)[:, 1:]
        if self.head == "sigmoid_logit":
            return z[:, 1:] - z[:, :1]
        return z


@dataclass
class _Unit:
    conv: Layer
    bn: Layer | None
    end: str


class _Walker:
    def __init__(self, graph: Graph):
        self.g, self.seen, self.notes = graph, {graph.input}, []

    def consumers(self, name: str) -> list[Layer]:
        return self.g.consumers(name)

    def only(self, name: str) -> Layer:
        found = self.consumers(name)
        if len(found) != 1:
            raise NotAUNet(f"'{name}' feeds {len(found)} layers where a U-Net has one")
        self.seen.add(found[0].name)
        return found[0]

    def noise(self, name: str) -> tuple[str, list[Layer]]:
        """Step over dropout-like layers following ``name``."""
        passed = []
        while len(found := self.consumers(name)) == 1 and found[0].kind in _NOISE:
            passed.append(found[0])
            self.seen.add(found[0].name)
            name = found[0].name
        return name, passed

    def dropped(self, layers: list[Layer]) -> None:
        for layer in layers:
            self.notes.append(f"{layer.kind} layer '{layer.name}' left out (discnet has dropout at the bottleneck)")

    def unit(self, name: str) -> _Unit:
        name, passed = self.noise(name)
        self.dropped(passed)
        conv = self.only(name)
        s = conv.settings
        if conv.kind != "Conv2D" or s["kernel"] != [3, 3] or s["strides"] != [1, 1] or s["groups"] != 1:
            raise NotAUNet(f"'{conv.name}' is not a 3x3 stride-1 Conv2D where the U-Net has one")
        if s["dilation"][0] != s["dilation"][1]:
            raise NotAUNet(f"'{conv.name}' has unequal dilation {s['dilation']}")
        if s["activation"] == "relu":
            return _Unit(conv, None, conv.name)
        if s["activation"] != "linear":
            raise NotAUNet(f"'{conv.name}' has activation {s['activation']}, not ReLU")
        nxt, bn = self.only(conv.name), None
        if nxt.kind == "BatchNormalization":
            bn, nxt = nxt, self.only(nxt.name)
        relu = (nxt.kind == "Activation" and nxt.settings["activation"] == "relu") or (
            nxt.kind == "ReLU" and nxt.settings == {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}
        )
        if not relu:
            raise NotAUNet(f"'{nxt.name}' ({nxt.kind}) is not the ReLU of a U-Net convolution")
        return _Unit(conv, bn, nxt.name)

    def double(self, name: str) -> list[_Unit]:
        first = self.unit(name)
        return [first, self.unit(first.end)]


def _walk(graph: Graph) -> tuple[_Walker, dict]:
    """Follow the U-Net from input to output; the structure found (or NotAUNet)."""
    w = _Walker(graph)
    pos, encoder, skips = graph.input, [], []
    while True:
        units = w.double(pos)
        end, passed = w.noise(units[1].end)
        pools = [c for c in w.consumers(end) if c.kind == "MaxPooling2D"]
        if not pools:
            break
        pool = pools[0]
        if len(w.consumers(end)) != 2 or pool.settings != {"pool": [2, 2], "strides": [2, 2], "padding": "valid"}:
            raise NotAUNet(f"'{end}' does not feed exactly a 2x2 max pooling and a skip connection")
        w.dropped(passed)
        w.seen.add(pool.name)
        encoder.append(units)
        skips.append(end)
        pos = pool.name
    if not encoder:
        raise NotAUNet("no 2x2 max pooling: not a U-Net")
    bottleneck, dropout = units, [p for p in passed if p.kind == "Dropout"]
    w.dropped([p for p in passed if p.kind != "Dropout"] + dropout[1:])
    pos, decoder = end, []
    for level in reversed(range(len(encoder))):
        up = w.only(pos)
        s = up.settings
        if up.kind != "Conv2DTranspose" or (s["kernel"], s["strides"], s["padding"]) != ([2, 2], [2, 2], "valid"):
            raise NotAUNet(f"'{up.name}' is not a 2x2 stride-2 Conv2DTranspose up step")
        if s["activation"] != "linear" or s["dilation"] != [1, 1]:
            raise NotAUNet(f"'{up.name}' has an activation or dilation; discnet's up step has neither")
        cat = w.only(up.name)
        if cat.kind != "Concatenate" or cat.settings["dim"] != 1 or len(cat.inputs) != 2:
            raise NotAUNet(f"'{cat.name}' is not a channel concatenation of skip and up step")
        other = cat.inputs[1] if cat.inputs[0] == up.name else cat.inputs[0]
        crop = _skip_crop(graph, w, other, skips[level])
        units = w.double(cat.name)
        decoder.append({"up": up, "crop": crop, "up_first": cat.inputs[0] == up.name, "units": units})
        pos, passed = w.noise(units[1].end)
        w.dropped(passed)
    return w, {"encoder": encoder, "bottleneck": bottleneck, "dropout": dropout[:1], "decoder": decoder, "end": pos}


def _skip_crop(graph: Graph, w: _Walker, other: str, skip: str) -> list | None:
    if other == skip:
        return None
    layer = graph.layer(other)
    if layer.kind != "Cropping2D" or layer.inputs != [skip]:
        raise NotAUNet(f"'{other}' is not the skip connection from '{skip}'")
    for before, after in layer.settings["margins"]:
        if before != (before + after) // 2:
            raise NotAUNet(f"'{other}' crops {before},{after}: not discnet's centre crop")
    w.seen.add(layer.name)
    return layer.settings["margins"]


def _head(graph: Graph, w: _Walker, pos: str) -> tuple[Layer, str]:
    conv = w.only(pos)
    s = conv.settings
    if conv.kind != "Conv2D" or s["kernel"] != [1, 1] or s["strides"] != [1, 1] or s["groups"] != 1:
        raise NotAUNet(f"'{conv.name}' is not the final 1x1 convolution")
    act, last = s["activation"], conv
    if act == "linear" and w.consumers(conv.name):
        last = w.only(conv.name)
        act = {"Activation": last.settings.get("activation"), "Softmax": "softmax"}.get(last.kind)
        if last.kind == "Softmax" and last.settings["dim"] != 1:
            act = None
    elif act == "linear":
        act = "logits"
    if act == "sigmoid" and s["filters"] == 1:
        head = "sigmoid"
    elif act == "logits":
        head = "sigmoid_logit" if s["filters"] == 1 else "logits"
    elif act == "softmax" and s["filters"] >= 2:
        head = "softmax"
    else:
        raise NotAUNet(f"the output ({act} over {s['filters']} channels) is not a softmax or one-channel sigmoid")
    if last.name != graph.output:
        raise NotAUNet(f"'{last.name}' is not the model's output")
    return conv, head


def _check(graph: Graph, found: dict, head: Layer, seen: set[str]) -> dict:
    units = [u for level in found["encoder"] for u in level] + found["bottleneck"]
    units += [u for step in found["decoder"] for u in step["units"]]
    paddings = {u.conv.settings["padding"] for u in units}
    dilations = {u.conv.settings["dilation"][0] for u in units}
    norms = {u.bn is not None for u in units}
    if len(paddings) > 1 or len(dilations) > 1 or len(norms) > 1:
        raise NotAUNet("padding, dilation or batch norm differ between convolutions")
    base, depth = found["encoder"][0][0].conv.settings["filters"], len(found["encoder"])
    widths = [base * 2**level for level in range(depth)]
    wanted = [w for w in widths for _ in (0, 1)] + [base * 2**depth] * 2
    wanted += [w for w in reversed(widths) for _ in (0, 1)]
    if [u.conv.settings["filters"] for u in units] != wanted:
        raise NotAUNet(f"convolution widths {[u.conv.settings['filters'] for u in units]} do not double per level")
    if [step["up"].settings["filters"] for step in found["decoder"]] != widths[::-1]:
        raise NotAUNet("the up steps do not halve the width")
    unused = {layer.name for layer in graph.layers} - seen
    if unused:
        raise NotAUNet(f"layers {sorted(unused)} are not part of a U-Net")
    dropout = found["dropout"][0].settings["rate"] if found["dropout"] else 0.0
    return {
        "in_channels": units[0].conv.settings["in_channels"],
        "num_classes": max(head.settings["filters"], 2),
        "base_filters": base,
        "depth": depth,
        "dropout": dropout,
        "dilation": dilations.pop(),
        "norm": "batch" if norms.pop() else "none",
        "padding": paddings.pop(),
    }


def _conv_weights(w: dict, perm: np.ndarray | None = None) -> torch.Tensor:
    kernel = w["kernel"].transpose(3, 2, 0, 1)
    return torch.as_tensor(np.ascontiguousarray(kernel if perm is None else kernel[:, perm]))


def _put_unit(sd: dict, prefix: str, index: int, unit: _Unit, weights: dict, eps: float, perm=None) -> None:
    w = weights[unit.conv.name]
    bias = w.get("bias", np.zeros(unit.conv.settings["filters"], np.float32))
    at = f"{prefix}.{index * (3 if unit.bn else 2)}"
    sd[f"{at}.weight"] = _conv_weights(w, perm)
    if unit.bn is None:
        sd[f"{at}.bias"] = torch.as_tensor(bias)
        return
    b, s = weights[unit.bn.name], unit.bn.settings
    n = len(b["moving_mean"])
    var = b["moving_variance"] + s["epsilon"] - eps
    if (var <= 0).any():
        raise NotAUNet(f"'{unit.bn.name}' has an epsilon that cannot be moved into the running variance")
    bn = f"{prefix}.{index * 3 + 1}"
    sd[f"{bn}.weight"] = torch.as_tensor(b.get("gamma", np.ones(n, np.float32)))
    sd[f"{bn}.bias"] = torch.as_tensor(b.get("beta", np.zeros(n, np.float32)))
    sd[f"{bn}.running_mean"] = torch.as_tensor(b["moving_mean"] - bias)
    sd[f"{bn}.running_var"] = torch.as_tensor(var.astype(np.float32))


def map_unet(model: KerasModel) -> UNetMapping:
    """The discnet U-Net equivalent of a Keras model; :class:`NotAUNet` when its shape differs."""
    graph, weights = model.graph, model.weights
    walker, found = _walk(graph)
    head, kind = _head(graph, walker, found["end"])
    kwargs = _check(graph, found, head, walker.seen)
    net = UNet(**kwargs)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    eps = net.bottleneck[1].eps if kwargs["norm"] == "batch" else 0.0
    for level, units in enumerate(found["encoder"]):
        for i, unit in enumerate(units):
            _put_unit(sd, f"down.{level}", i, unit, weights, eps)
    for i, unit in enumerate(found["bottleneck"]):
        _put_unit(sd, "bottleneck", i, unit, weights, eps)
    for k, step in enumerate(found["decoder"]):
        width = step["up"].settings["filters"]
        up = weights[step["up"].name]
        sd[f"up.{k}.weight"] = _conv_weights(up)
        sd[f"up.{k}.bias"] = torch.as_tensor(up.get("bias", np.zeros(width, np.float32)))
        perm = np.r_[width : 2 * width, 0:width] if step["up_first"] else None
        for i, unit in enumerate(step["units"]):
            _put_unit(sd, f"up_conv.{k}", i, unit, weights, eps, perm if i == 0 else None)
    h = weights[head.name]
    hw, hb = _conv_weights(h), torch.as_tensor(h.get("bias", np.zeros(head.settings["filters"], np.float32)))
    if head.settings["filters"] == 1:  # sigmoid z -> logits [0, z]
        hw, hb = torch.cat([torch.zeros_like(hw), hw]), torch.cat([torch.zeros_like(hb), hb])
    sd["head.weight"], sd["head.bias"] = hw, hb
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        raise NotAUNet(f"weights do not fit discnet's U-Net ({str(err).splitlines()[0]})") from err
    bns = [u.bn for level in found["encoder"] for u in level if u.bn is not None]
    batch_norm = None
    if bns:
        batch_norm = {"epsilon": bns[0].settings["epsilon"], "momentum": bns[0].settings["momentum"]}
        walker.notes.append(
            f"batch norm: Keras epsilon {batch_norm['epsilon']:g} folded into the running variance; Keras momentum "
            f"{batch_norm['momentum']:g} (PyTorch {1 - batch_norm['momentum']:g}) recorded, discnet trains with 0.1"
        )
    return UNetMapping(kwargs, net.state_dict(), kind, walker.notes, batch_norm)

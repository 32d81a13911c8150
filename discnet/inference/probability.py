"""Slice-wise inference: network-ready slices -> disc probability on the native slice grid.

Used by validation during training and by ``discnet predict``, so both see the same numbers.

Example:
    >>> import torch
    >>> from discnet.models.unet import UNet
    >>> net = UNet(base_filters=4, depth=2).eval()
    >>> prob = disc_probability([net], torch.zeros(3, 32, 32, dtype=torch.half), (40, 24))
    >>> prob.shape
    (3, 40, 24)
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from discnet.data.slices import neighbour_rows, resize_back


def segment_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits on exactly the input's grid.

    A valid-padding U-Net shrinks its input (572 -> 388); its input is mirrored at the border by the
    missing margin (Ronneberger's overlap-tile strategy) and the output cropped to the input's size, so
    that every output pixel lies where its input pixel was.
    """
    if getattr(net, "padding", "same") != "valid":
        return net(x)
    h, w = x.shape[-2:]
    size = net.input_size_for_output(max(h, w))
    top, left = (size - h) // 2, (size - w) // 2
    padded = F.pad(x, (left, size - w - left, top, size - h - top), mode="reflect")
    out = net(padded)
    oh, ow = out.shape[-2:]
    t, lft = (oh - h) // 2, (ow - w) // 2
    return out[..., t : t + h, lft : lft + w]


def _autocast(device: torch.device, precision: str):
    if precision in ("bf16", "bf16-mixed"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def disc_probability(
    nets: list[nn.Module],
    images: torch.Tensor,
    native_shape: tuple[int, int],
    batch_size: int = 8,
    device: str | torch.device | None = None,
    precision: str = "32",
    channels_last: bool = False,
    fit: str = "stretch",
) -> np.ndarray:
    """Disc probability (1 - P(background)) of every slice, averaged over ``nets``, on the native grid.

    A network with 2k+1 input channels (``model.context_slices`` = k) gets each slice with its k
    neighbours on either side (the scan's edge slice repeated beyond its ends).

    Args:
        nets: one model or several (an ensemble; probabilities are averaged).
        images: (n, S, S) network inputs (as :func:`~discnet.data.preprocess.prepare_volume` makes them).
        native_shape: (H, W) of the native slices; probabilities are resized back before any threshold.
        batch_size: slices per forward pass.
        device: where the networks run (default: where their parameters are).
        precision: ``"32"`` or ``"bf16"`` (autocast).
        channels_last: use the channels-last memory format.
        fit: how the slices were made square (``InputConfig.fit``), undone when resizing back.
    """
    device = torch.device(device) if device is not None else next(nets[0].parameters()).device
    out = torch.zeros((len(images), *native_shape), dtype=torch.float32)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    context = (getattr(nets[0], "in_channels", 1) - 1) // 2
    neighbours = neighbour_rows(len(images), context)
    for start in range(0, len(images), batch_size):
        x = images[neighbours[start : start + batch_size]].to(device=device, dtype=torch.float32)
        x = x.contiguous(memory_format=fmt)
        total = None
        for net in nets:
            with _autocast(device, precision):
                logits = segment_logits(net, x)
            p_disc = 1.0 - torch.softmax(logits.float(), dim=1)[:, :1]
            total = p_disc if total is None else total + p_disc
        out[start : start + len(x)] = resize_back(total / len(nets), native_shape, fit)[:, 0].cpu()
    return out.numpy()

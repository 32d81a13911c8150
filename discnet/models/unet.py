"""The 2D U-Net of Ronneberger et al. (2015) with the paper's tuning options.

Per level two 3x3 convolutions (+ optional batch norm) + ReLU, 2x2 max pooling on the way down, a 2x2
up-convolution (``ConvTranspose2d``, stride 2, halving the channels) on the way up, skip concatenation and
a final 1x1 convolution giving raw logits. The original model has 64 filters at the first level, doubling
per level, depth 4 (64-128-256-512 encoder, 1024 bottleneck): 31,030,658 parameters for 1 input channel
and 2 classes.

Paper options (sections 2.4-2.5, Tables 2-3):

- ``params``: fraction of the original number of *trainable parameters* (1.0 / 0.75 / 0.5); the first-level
  width is chosen so the parameter count is nearest to that fraction (64 / 55 / 45 filters).
- ``dropout``: element-wise ``nn.Dropout`` (as Keras ``Dropout``) on the bottleneck output.
- ``dilation``: dilation of every 3x3 convolution; in "same" mode padded by ``dilation`` to keep sizes.
- ``norm="batch"``: ``BatchNorm2d`` after each 3x3 convolution, before the ReLU (convolution bias off).
- ``padding="valid"``: the original geometry (unpadded convolutions, centre-cropped skips, 572 -> 388).

Weights use He (Kaiming normal, fan-in) initialisation as in Ronneberger et al.; biases start at zero.

Example:
    >>> net = UNet(base_filters=8, depth=2)
    >>> net(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 2, 32, 32])
    >>> filters_for_params(0.5), UNet(padding="valid").output_size(572)
    (45, 388)
"""

from __future__ import annotations

import torch
from torch import nn

#: First-level width of the original U-Net (the 100% model).
REFERENCE_FILTERS = 64

_NORMS = ("none", "batch")
_PADDINGS = ("same", "valid")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``.

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def unet_parameter_count(
    base_filters: int, *, in_channels: int = 1, num_classes: int = 2, depth: int = 4, norm: str = "none"
) -> int:
    """Closed-form trainable parameter count of :class:`UNet` (no model is built).

    Example:
        >>> unet_parameter_count(64)
        31030658
    """
    per_channel = 2 if norm == "batch" else 1  # BN weight + bias, or the conv bias

    def conv3(cin: int, cout: int) -> int:
        return cin * cout * 9 + per_channel * cout

    total, channels = 0, in_channels
    for level in range(depth + 1):  # encoder levels and the bottleneck
        width = base_filters * 2**level
        total += conv3(channels, width) + conv3(width, width)
        channels = width
    for level in reversed(range(depth)):
        width = base_filters * 2**level
        total += channels * width * 4 + width  # up-convolution
        total += conv3(2 * width, width) + conv3(width, width)
        channels = width
    return total + channels * num_classes + num_classes


def filters_for_params(
    params: float,
    *,
    in_channels: int = 1,
    num_classes: int = 2,
    depth: int = 4,
    norm: str = "none",
    reference_filters: int = REFERENCE_FILTERS,
) -> int:
    """First-level width whose parameter count is nearest ``params`` x that of the 100% model.

    The 100% model has ``reference_filters`` first-level filters (64: the original U-Net; a smaller value
    scales the 100/75/50% family down alike, for CPU-scale experiments).

    Example:
        >>> [filters_for_params(p) for p in (1.0, 0.75, 0.5)], filters_for_params(0.5, reference_filters=8)
        ([64, 55, 45], 6)
    """
    if not params > 0:
        raise ValueError(f"params must be a positive fraction of the original model, got {params}")
    kwargs = dict(in_channels=in_channels, num_classes=num_classes, depth=depth, norm=norm)
    target = params * unet_parameter_count(reference_filters, **kwargs)
    width = 1
    while unet_parameter_count(width + 1, **kwargs) <= target:
        width += 1
    above = unet_parameter_count(width + 1, **kwargs)
    return width + 1 if above - target < target - unet_parameter_count(width, **kwargs) else width


class _DoubleConv(nn.Sequential):
    """Two (3x3 convolution [+ batch norm] + ReLU) blocks."""

    def __init__(self, cin: int, cout: int, dilation: int, pad: int, batch_norm: bool):
        layers: list[nn.Module] = []
        for c in (cin, cout):
            layers.append(nn.Conv2d(c, cout, 3, padding=pad, dilation=dilation, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def _center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


class UNet(nn.Module):
    """Ronneberger U-Net returning raw logits ``N x num_classes x H' x W'``.

    Args:
        in_channels: image channels.
        num_classes: output channels (logits; 2 = background + disc).
        params: fraction of the original parameter count (1.0, 0.75, 0.5 in the paper).
        base_filters: first-level width; overrides ``params`` when given.
        reference_filters: first-level width of the 100% model that ``params`` is a fraction of (64).
        depth: number of poolings (4 in the original).
        dropout: ``nn.Dropout`` rate on the bottleneck output (0 disables it).
        dilation: dilation rate of the 3x3 convolutions.
        norm: "none" or "batch" (``BatchNorm2d`` before each ReLU).
        padding: "same" (output size = input size; sizes divisible by ``2**depth``) or "valid" (original
            unpadded geometry, output smaller; see :meth:`output_size`).

    Example:
        >>> UNet(params=0.75).base_filters
        55
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 2,
        params: float = 1.0,
        base_filters: int | None = None,
        reference_filters: int = REFERENCE_FILTERS,
        depth: int = 4,
        dropout: float = 0.2,
        dilation: int = 1,
        norm: str = "none",
        padding: str = "same",
    ):
        super().__init__()
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
        if padding not in _PADDINGS:
            raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}")
        if depth < 1 or dilation < 1 or not 0 <= dropout < 1:
            raise ValueError(f"need depth >= 1, dilation >= 1, 0 <= dropout < 1; got {depth}, {dilation}, {dropout}")
        if base_filters is None:
            base_filters = filters_for_params(
                params,
                in_channels=in_channels,
                num_classes=num_classes,
                depth=depth,
                norm=norm,
                reference_filters=reference_filters,
            )
        elif base_filters < 1:
            raise ValueError(f"base_filters must be >= 1, got {base_filters}")
        self.base_filters, self.depth, self.dilation, self.padding = base_filters, depth, dilation, padding
        self.in_channels = in_channels
        pad = dilation if padding == "same" else 0
        bn = norm == "batch"
        widths = [base_filters * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        channels = in_channels
        for width in widths[:-1]:
            self.down.append(_DoubleConv(channels, width, dilation, pad, bn))
            channels = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _DoubleConv(channels, widths[-1], dilation, pad, bn)
        self.dropout = nn.Dropout(dropout)
        self.up = nn.ModuleList(nn.ConvTranspose2d(2 * w, w, 2, stride=2) for w in reversed(widths[:-1]))
        self.up_conv = nn.ModuleList(_DoubleConv(2 * w, w, dilation, pad, bn) for w in reversed(widths[:-1]))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def output_size(self, input_size: int) -> int:
        """Output side length for an input side of ``input_size``; ValueError if the size does not fit.

        Example:
            >>> UNet(padding="valid").output_size(572), UNet().output_size(512)
            (388, 512)
        """
        if self.padding == "same":
            if input_size < 1 or input_size % 2**self.depth:
                raise ValueError(
                    f"input size {input_size} must be a positive multiple of 2**depth = {2**self.depth}; "
                    f"pad or resize to {self.valid_input_size(max(input_size, 1))}"
                )
            return input_size
        size = self._valid_output(input_size)
        if size is None:
            raise ValueError(
                f"input size {input_size} does not fit the valid-padding U-Net (depth {self.depth}, dilation "
                f"{self.dilation}); use e.g. {self.valid_input_size(max(input_size, 1))}"
            )
        return size

    def valid_input_size(self, min_size: int) -> int:
        """Smallest accepted input side length that is >= ``min_size``.

        Example:
            >>> UNet(padding="valid").valid_input_size(570), UNet().valid_input_size(500)
            (572, 512)
        """
        size = max(int(min_size), 1)
        if self.padding == "same":
            return -(-size // 2**self.depth) * 2**self.depth
        while self._valid_output(size) is None:
            size += 1
        return size

    def input_size_for_output(self, min_output: int) -> int:
        """Smallest accepted input side whose output side is >= ``min_output`` (for tiling).

        Example:
            >>> UNet(padding="valid").input_size_for_output(388)
            572
        """
        size = self.valid_input_size(min_output)
        while self.output_size(size) < min_output:
            size = self.valid_input_size(size + 1)
        return size

    def _valid_output(self, size: int) -> int | None:
        shrink = 4 * self.dilation  # two unpadded 3x3 convolutions
        for _ in range(self.depth):
            size -= shrink
            if size < 2 or size % 2:
                return None
            size //= 2
        size -= shrink  # bottleneck
        if size < 1:
            return None
        for _ in range(self.depth):
            size = 2 * size - shrink
            if size < 1:
                return None
        return size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.output_size(x.shape[-2])
        self.output_size(x.shape[-1])
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottleneck(x))
        for up, block, skip in zip(self.up, self.up_conv, reversed(skips), strict=True):
            x = up(x)
            if self.padding == "valid":
                skip = _center_crop(skip, x.shape[-2], x.shape[-1])
            x = block(torch.cat((skip, x), dim=1))
        return self.head(x)

"""Loading networks from checkpoint files, safely (``torch.load(weights_only=True)``: no code runs).

A discnet checkpoint is a Lightning checkpoint whose ``hyper_parameters['net']`` holds the
:class:`~discnet.models.unet.UNet` arguments and whose ``state_dict`` holds ``net.``-prefixed weights.
A converted Keras model is saved in the same layout.

Example:
    >>> net = build_net({"base_filters": 4, "depth": 2})
    >>> type(net).__name__
    'UNet'
"""

from __future__ import annotations

import inspect
import io
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from discnet.errors import InputError
from discnet.io.limits import check_limit
from discnet.models.unet import UNet

PREFIX = "net."
_FIX = "give a checkpoint written by discnet train or discnet convert"


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__


def build_net(kwargs: dict) -> UNet:
    """A U-Net from its keyword arguments (as stored in checkpoints)."""
    return UNet(**{k: v for k, v in kwargs.items() if k != "_target_"})


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),)}
#: U-Net arguments bounded by a limit of :mod:`discnet.io.limits` (argument -> limit).
_SIZED = {
    "base_filters": "base_filters",
    "reference_filters": "base_filters",
    "in_channels": "base_filters",
    "num_classes": "base_filters",
    "depth": "depth",
    "dilation": "image_size",
}


def check_net_kwargs(kwargs, where) -> dict:
    """``kwargs`` if they are U-Net arguments of the right types within the size limits; InputError otherwise.

    Example:
        >>> check_net_kwargs({"base_filters": 4, "depth": 2}, "m.ckpt")
        {'base_filters': 4, 'depth': 2}
    """
    if not isinstance(kwargs, dict):
        raise InputError(where, f"records its network as a {type(kwargs).__name__}, not a mapping", _FIX)
    params = inspect.signature(UNet).parameters
    for key, value in kwargs.items():
        if key == "_target_":
            continue
        if key not in params:
            raise InputError(where, f"records an unknown network setting '{key}'", _FIX)
        allowed = tuple(t for name in str(params[key].annotation).split("|") for t in _TYPES.get(name.strip(), ()))
        if allowed and (isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed)):
            raise InputError(where, f"records network setting {key}={value!r} of the wrong type", _FIX)
    for key, name in _SIZED.items():
        value = kwargs.get(key)
        if isinstance(value, int):
            if value < 1:
                raise InputError(where, f"records network setting {key}={value}, which must be at least 1", _FIX)
            check_limit(name, value, where, key)
    params = kwargs.get("params", 1.0)
    if not 0 < params <= 4:
        raise InputError(where, f"records network setting params={params}, not in (0, 4]", _FIX)
    return kwargs


def check_image_size(value, where) -> int:
    """``value`` as a network input side (an integer from 8 to the limit); InputError otherwise.

    Example:
        >>> check_image_size(256, "m.ckpt")
        256
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(where, f"records image_size {value!r}, not a whole number", _FIX)
    if value < 8:
        raise InputError(where, f"records image_size {value}, which must be at least 8", _FIX)
    check_limit("image_size", value, where, "image_size")
    return value


def read_checkpoint(path, where: str | Path | None = None) -> dict:
    """The checkpoint's contents, loaded with ``weights_only=True``; InputError on anything else.

    ``path`` is a file path or a binary file object (``where`` then names it in messages). The layout
    is checked too: a ``state_dict`` of tensors, ``hyper_parameters`` a mapping whose ``net`` and
    ``image_size`` are valid and within the limits of :mod:`discnet.io.limits`.
    """
    source = path if isinstance(path, io.IOBase) else Path(path)
    path = where if where is not None else source
    if not isinstance(source, io.IOBase):
        if source.is_dir():
            raise InputError(path, "is a folder, not a checkpoint file", "give the path of a .ckpt file")
        if not source.is_file():
            raise InputError(path, "checkpoint not found", "give the path of a .ckpt file")
        check_limit("checkpoint_bytes", source.stat().st_size, path, "bytes")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            data = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not str(err).startswith("Weights only load failed"):
            raise InputError(path, f"is not a loadable discnet checkpoint ({_first_line(err)})", _FIX) from err
        raise InputError(
            path, "holds Python objects other than weights: refused without running them (weights_only)", _FIX
        ) from err
    except (RuntimeError, OSError, zipfile.BadZipFile, EOFError, ValueError, AttributeError, MemoryError) as err:
        problem = f"cannot be read as a checkpoint: truncated, corrupt or another format ({_first_line(err)})"
        raise InputError(path, problem, _FIX) from err
    if not isinstance(data, dict) or "state_dict" not in data:
        raise InputError(path, "is not a discnet checkpoint (no state_dict)", "give a checkpoint written by discnet")
    state = data["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "has a state_dict that is not a mapping of tensors", _FIX)
    hyper = data.get("hyper_parameters", {})
    if not isinstance(hyper, dict):
        raise InputError(path, f"has hyper_parameters that are a {type(hyper).__name__}, not a mapping", _FIX)
    if hyper.get("net") is not None:
        check_net_kwargs(hyper["net"], path)
    if hyper.get("image_size") is not None:
        check_image_size(hyper["image_size"], path)
    return data


def net_state_dict(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The network's weights without the ``net.`` prefix."""
    state = checkpoint["state_dict"]
    return {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}


def load_net(path: str | Path) -> tuple[UNet, dict]:
    """Rebuild the network stored in a checkpoint; returns ``(net in eval mode, checkpoint)``."""
    checkpoint = read_checkpoint(path)
    kwargs = checkpoint.get("hyper_parameters", {}).get("net")
    if not isinstance(kwargs, dict):
        raise InputError(path, "does not record its network architecture", "give a checkpoint written by discnet")
    try:
        net = build_net(kwargs)
    except (TypeError, ValueError) as err:
        raise InputError(path, f"records an invalid network ({_first_line(err)})", _FIX) from err
    load_weights(net, checkpoint, path)
    return net.eval(), checkpoint


def load_weights(net: nn.Module, checkpoint: dict, path: str | Path) -> None:
    """Copy a checkpoint's network weights into ``net``; InputError when the architectures differ."""
    try:
        net.load_state_dict(net_state_dict(checkpoint), strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise InputError(
            path, f"holds weights of another architecture ({first})", "use a checkpoint of the same model configuration"
        ) from err

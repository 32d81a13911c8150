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

import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from discnet.errors import InputError
from discnet.models.unet import UNet

PREFIX = "net."
_FIX = "give a checkpoint written by discnet train or discnet convert"


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__


def build_net(kwargs: dict) -> UNet:
    """A U-Net from its keyword arguments (as stored in checkpoints)."""
    return UNet(**{k: v for k, v in kwargs.items() if k != "_target_"})


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents, loaded with ``weights_only=True``; InputError on anything else."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder, not a checkpoint file", "give the path of a .ckpt file")
    if not path.is_file():
        raise InputError(path, "checkpoint not found", "give the path of a .ckpt file")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not str(err).startswith("Weights only load failed"):
            raise InputError(path, f"is not a loadable discnet checkpoint ({_first_line(err)})", _FIX) from err
        raise InputError(
            path, "holds Python objects other than weights: refused without running them (weights_only)", _FIX
        ) from err
    except (RuntimeError, OSError, zipfile.BadZipFile, EOFError, ValueError, AttributeError) as err:
        problem = f"cannot be read as a checkpoint: truncated, corrupt or another format ({_first_line(err)})"
        raise InputError(path, problem, _FIX) from err
    if not isinstance(data, dict) or "state_dict" not in data:
        raise InputError(path, "is not a discnet checkpoint (no state_dict)", "give a checkpoint written by discnet")
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
    net = build_net(kwargs)
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

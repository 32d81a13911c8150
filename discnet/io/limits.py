"""Size limits checked against what a file declares, before anything is allocated.

Each limit can be raised (or lowered) with an environment variable ``DISCNET_MAX_<NAME>``, e.g.
``DISCNET_MAX_IMAGE_VOXELS=500000000``. The defaults are far above any spine MRI (a 512 x 512 x 200 scan
has 52 M voxels) and any discnet model, and far below what would exhaust a workstation.

Example:
    >>> limit("image_voxels") == 2**28
    True
    >>> check_limit("image_size", 512, "model.ckpt")
"""

from __future__ import annotations

import os

from discnet.errors import InputError

#: name -> (default, what it bounds)
LIMITS: dict[str, tuple[int, str]] = {
    "image_voxels": (2**28, "voxels of one image"),
    "image_bytes": (2**30, "bytes of one image's decompressed voxel data"),
    "image_side": (4096, "voxels along one image axis (discnet synth --size)"),
    "checkpoint_bytes": (2**31, "bytes of a checkpoint file"),
    "image_size": (4096, "network input side (image_size)"),
    "base_filters": (1024, "first-level filters of a U-Net"),
    "depth": (8, "levels of a U-Net"),
    "keras_weight_bytes": (2**31, "bytes of the weights a Keras file declares"),
    "archive_member_bytes": (2**31, "decompressed bytes of one file inside a .keras archive"),
    "yaml_bytes": (2**20, "bytes of a run's config.yaml beside a checkpoint"),
    "json_bytes": (2**24, "bytes of a Keras model's JSON config"),
    "json_depth": (200, "nesting depth of a JSON config"),
    "text_bytes": (2**24, "bytes of a levels or label description file"),
}


def env_name(name: str) -> str:
    """The environment variable that overrides limit ``name``."""
    return f"DISCNET_MAX_{name.upper()}"


def limit(name: str) -> int:
    """The value of limit ``name``: its environment variable if set (an integer), else the default."""
    default, _ = LIMITS[name]
    text = os.environ.get(env_name(name))
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError as err:
        raise InputError(env_name(name), f"is '{text}', not an integer", "give a whole number or unset it") from err
    if value < 1:
        raise InputError(env_name(name), f"is {value}", "give a positive number or unset it")
    return value


def check_limit(name: str, value: int, where, what: str | None = None) -> None:
    """InputError when ``value`` exceeds limit ``name``; the message names ``where`` and the override."""
    most = limit(name)
    if value > most:
        described = what or LIMITS[name][1]
        raise InputError(
            where,
            f"has {value} {described}, more than the limit {most}",
            f"check it; if that is intended, raise {env_name(name)}",
        )

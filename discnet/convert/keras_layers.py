"""Keras layer settings -> plain, channels-first settings (one function per family of layers).

Only the options discnet can reproduce exactly are accepted; anything else raises ValueError, which
:func:`~discnet.convert.keras_config.parse_config` reports with the layer's name.

Example:
    >>> layer_settings("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"})["kernel"]
    [3, 3]
    >>> layer_settings("Concatenate", {"axis": -1})
    {'dim': 1}
"""

from __future__ import annotations

#: Keras class names (and old aliases) -> the kind used here.
KINDS = {
    "InputLayer": "InputLayer",
    "Conv2D": "Conv2D",
    "Convolution2D": "Conv2D",
    "Conv2DTranspose": "Conv2DTranspose",
    "Convolution2DTranspose": "Conv2DTranspose",
    "Deconvolution2D": "Conv2DTranspose",
    "BatchNormalization": "BatchNormalization",
    "Activation": "Activation",
    "ReLU": "ReLU",
    "LeakyReLU": "LeakyReLU",
    "ELU": "ELU",
    "Softmax": "Softmax",
    "MaxPooling2D": "MaxPooling2D",
    "MaxPool2D": "MaxPooling2D",
    "AveragePooling2D": "AveragePooling2D",
    "AvgPool2D": "AveragePooling2D",
    "Dropout": "Dropout",
    "SpatialDropout2D": "SpatialDropout2D",
    "GaussianNoise": "Noise",
    "GaussianDropout": "Noise",
    "AlphaDropout": "Noise",
    "ActivityRegularization": "Noise",
    "UpSampling2D": "UpSampling2D",
    "Cropping2D": "Cropping2D",
    "ZeroPadding2D": "ZeroPadding2D",
    "Concatenate": "Concatenate",
    "Add": "Add",
    "Subtract": "Subtract",
    "Multiply": "Multiply",
    "Average": "Average",
    "Maximum": "Maximum",
    "Minimum": "Minimum",
    "Rescaling": "Rescaling",
}
#: Keras activations by name (custom activations are refused).
ACTIVATIONS = {"linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign", "swish"}
ACTIVATIONS |= {"silu", "gelu", "exponential", "relu6"}


def _pair(value, name: str) -> list[int]:
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [int(v) for v in value]
    raise ValueError(f"{name} {value!r} is not one or two integers")


def _margins(value, name: str) -> list[list[int]]:
    """Keras cropping/padding (int, (h, w) or ((top, bottom), (left, right))) -> [[top, bottom], [left, right]]."""
    if isinstance(value, int):
        return [[value, value], [value, value]]
    if isinstance(value, list | tuple) and len(value) == 2:
        return [_pair(v, name) for v in value]
    raise ValueError(f"{name} {value!r} is not understood")


def _dim(axis) -> int:
    """A channels-last axis of a 4D tensor -> the channels-first dimension."""
    if isinstance(axis, list | tuple) and len(axis) == 1:
        axis = axis[0]
    if not isinstance(axis, int) or axis % 4 == 0:
        raise ValueError(f"axis {axis!r} is not a channel or spatial axis")
    return {1: 2, 2: 3, 3: 1}[axis % 4]


def _activation(value) -> str:
    if isinstance(value, dict) and value.get("class_name") == "function" and isinstance(value.get("config"), str):
        value = value["config"]  # Keras 3 serialises built-in activations this way when they are objects
    if value is None:
        return "linear"
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(f"activation {value!r} is not a standard Keras activation")
    return value


def _channels_last(cfg: dict) -> None:
    if cfg.get("data_format", "channels_last") not in (None, "channels_last"):
        raise ValueError("data_format channels_first is not supported (save the model channels_last)")


def _conv(cfg: dict, transpose: bool) -> dict:
    _channels_last(cfg)
    padding = cfg.get("padding", "valid")
    if padding not in ("same", "valid"):
        raise ValueError(f"padding {padding!r} is not supported")
    if transpose and cfg.get("output_padding") is not None:
        raise ValueError("Conv2DTranspose with output_padding is not supported")
    groups = int(cfg.get("groups", 1) or 1)
    if transpose and groups != 1:
        raise ValueError("grouped Conv2DTranspose is not supported")
    return {
        "filters": int(cfg["filters"]),
        "kernel": _pair(cfg["kernel_size"], "kernel_size"),
        "strides": _pair(cfg.get("strides", 1), "strides"),
        "padding": padding,
        "dilation": _pair(cfg.get("dilation_rate", 1), "dilation_rate"),
        "groups": groups,
        "activation": _activation(cfg.get("activation", "linear")),
        "use_bias": bool(cfg.get("use_bias", True)),
    }


def _pool(cfg: dict, kind: str) -> dict:
    _channels_last(cfg)
    pool = _pair(cfg.get("pool_size", 2), "pool_size")
    strides = _pair(cfg["strides"], "strides") if cfg.get("strides") is not None else pool
    padding = cfg.get("padding", "valid")
    if padding not in ("same", "valid") or (kind == "AveragePooling2D" and padding == "same"):
        raise ValueError(f"{kind} with padding {padding!r} is not supported")
    return {"pool": pool, "strides": strides, "padding": padding}


def layer_settings(kind: str, cfg: dict) -> dict:
    """Normalised settings of one layer; ValueError for options that are not supported."""
    if kind in ("Conv2D", "Conv2DTranspose"):
        return _conv(cfg, kind == "Conv2DTranspose")
    if kind == "BatchNormalization":
        dim = _dim(cfg.get("axis", -1))
        if dim != 1 or cfg.get("renorm") or cfg.get("synchronized"):
            raise ValueError("only plain batch normalization over the channel axis is supported")
        return {
            "epsilon": float(cfg.get("epsilon", 1e-3)),
            "momentum": float(cfg.get("momentum", 0.99)),
            "center": bool(cfg.get("center", True)),
            "scale": bool(cfg.get("scale", True)),
        }
    if kind == "Activation":
        return {"activation": _activation(cfg.get("activation"))}
    if kind == "ReLU":
        max_value = cfg.get("max_value")
        return {
            "max_value": None if max_value is None else float(max_value),
            "negative_slope": float(cfg.get("negative_slope", 0.0) or 0.0),
            "threshold": float(cfg.get("threshold", 0.0) or 0.0),
        }
    if kind == "LeakyReLU":
        return {"negative_slope": float(cfg.get("negative_slope", cfg.get("alpha", 0.3)))}
    if kind == "ELU":
        return {"alpha": float(cfg.get("alpha", 1.0))}
    if kind in ("Softmax", "Concatenate"):
        return {"dim": _dim(cfg.get("axis", -1))}
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return _pool(cfg, kind)
    if kind in ("Dropout", "SpatialDropout2D"):
        return {"rate": float(cfg.get("rate", 0.0))}
    if kind == "UpSampling2D":
        _channels_last(cfg)
        interpolation = cfg.get("interpolation", "nearest")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"interpolation {interpolation!r} is not supported (nearest, bilinear)")
        return {"size": _pair(cfg.get("size", 2), "size"), "interpolation": interpolation}
    if kind in ("Cropping2D", "ZeroPadding2D"):
        _channels_last(cfg)
        key = "cropping" if kind == "Cropping2D" else "padding"
        return {"margins": _margins(cfg.get(key, 1 if kind == "ZeroPadding2D" else 0), key)}
    if kind == "Rescaling":
        scale, offset = cfg.get("scale", 1.0), cfg.get("offset", 0.0)
        if not isinstance(scale, int | float) or not isinstance(offset, int | float):
            raise ValueError("only scalar Rescaling is supported")
        return {"scale": float(scale), "offset": float(offset)}
    return {}

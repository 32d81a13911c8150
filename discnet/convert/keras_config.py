"""A saved Keras model config (JSON) -> a plain layer graph; code-carrying layers are refused.

The config is read with :func:`json.loads` only. Lambda layers, TensorFlow-op layers, custom layers and
custom activations carry Python code (or need it to be rebuilt): such a model is refused, and nothing
from the file is ever executed. Settings are normalised to channels-first terms (``dim`` 1 = channels).

Example:
    >>> cfg = {"class_name": "Functional", "config": {"name": "m", "layers": [
    ...     {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [None, 8, 8, 1]},
    ...      "inbound_nodes": []},
    ...     {"class_name": "Conv2D", "name": "c", "config": {"filters": 2, "kernel_size": [1, 1],
    ...      "activation": "softmax"}, "inbound_nodes": [[["in", 0, 0, {}]]]}],
    ...     "input_layers": [["in", 0, 0]], "output_layers": [["c", 0, 0]]}}
    >>> g = parse_config(cfg)
    >>> [(layer.kind, layer.inputs) for layer in g.layers], g.input_shape
    ([('InputLayer', []), ('Conv2D', ['in'])], [8, 8, 1])
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from discnet.convert.keras_layers import KINDS, layer_settings
from discnet.errors import InputError
from discnet.io.limits import check_limit

#: Layers that hold Python code (marshalled functions, TensorFlow op calls).
CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
_FIX = "rebuild the model from standard Keras layers only and save it again (.h5 or .keras)"


@dataclass(frozen=True)
class Layer:
    """One Keras layer: ``kind`` (see :data:`KINDS`), normalised ``settings``, producer layer names."""

    name: str
    kind: str
    settings: dict
    inputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Graph:
    """A single-input, single-output Keras model as layers in execution order.

    ``input_shape`` is ``[H, W, C]`` (H, W may be None: any size).
    """

    name: str
    layers: list[Layer]
    input: str
    output: str
    input_shape: list

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    def consumers(self, name: str) -> list[Layer]:
        return [layer for layer in self.layers if name in layer.inputs]

    def to_dict(self) -> dict:
        """Plain data (stored in converted checkpoints; loadable with ``weights_only=True``)."""
        return {
            "name": self.name,
            "input": self.input,
            "output": self.output,
            "input_shape": list(self.input_shape),
            "layers": [
                {"name": x.name, "kind": x.kind, "settings": dict(x.settings), "inputs": list(x.inputs)}
                for x in self.layers
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Graph:
        layers = [Layer(x["name"], x["kind"], dict(x["settings"]), list(x["inputs"])) for x in data["layers"]]
        return cls(data["name"], layers, data["input"], data["output"], list(data["input_shape"]))


def _tensor_refs(value, where: str) -> list[str]:
    """Producer names of the Keras 3 call arguments ``value`` (tensors, lists of tensors)."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        name, node, index = value["config"]["keras_history"]
        if index != 0:
            raise ValueError(f"uses output {index} of '{name}'")
        return [name]
    if isinstance(value, list | tuple):
        return [ref for item in value for ref in _tensor_refs(item, where)]
    if isinstance(value, dict):
        raise ValueError(f"has a call argument {where} that is not a tensor")
    return []


def _inputs(layer: dict) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise ValueError("is called more than once (shared layers are not supported)")
    if not nodes:
        return []
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        for key, value in (node.get("kwargs") or {}).items():
            if _tensor_refs(value, key):
                raise ValueError(f"takes tensor keyword argument '{key}'")
        return _tensor_refs(node.get("args", []), "args")
    refs = []
    for entry in node:  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        if entry[2] != 0:
            raise ValueError(f"uses output {entry[2]} of '{entry[0]}'")
        refs.append(entry[0])
    return refs


def _endpoint(value, what: str) -> str:
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or len(value) != 1:
        raise ValueError(f"has {len(value) if isinstance(value, list) else '?'} {what}s; one is supported")
    return value[0][0]


def _refuse_code(layer: dict, class_name: str, name: str, where) -> None:
    if class_name in CODE_LAYERS:
        raise InputError(
            where, f"layer '{name}' is a {class_name} layer holding Python code, which discnet never runs", _FIX
        )
    if class_name in ("Functional", "Model", "Sequential"):
        raise InputError(where, f"layer '{name}' is a nested model", "flatten it into one functional model")
    module = layer.get("module") or ""
    registered = layer.get("registered_name")
    custom = (module and not module.startswith(("keras", "tf_keras"))) or (registered and "Custom>" in registered)
    if custom or class_name not in KINDS:
        raise InputError(
            where,
            f"layer '{name}' is of type {class_name}, which discnet cannot convert (custom or unsupported layer; "
            f"supported: {', '.join(sorted(set(KINDS.values())))})",
            _FIX,
        )


def _order(layers: list[Layer], output: str, where) -> list[Layer]:
    """The layers the output depends on, each after its producers (stable in the config's order)."""
    by_name = {layer.name: layer for layer in layers}
    needed, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name not in by_name:
            raise InputError(where, f"the model config refers to an unknown layer '{name}'", _FIX)
        if name not in needed:
            needed.add(name)
            stack += by_name[name].inputs
    ordered, done = [], set()
    pending = [layer for layer in layers if layer.name in needed]
    while pending:
        ready = [layer for layer in pending if all(i in done for i in layer.inputs)]
        if not ready:
            raise InputError(where, "the model config has a cycle", _FIX)
        ordered += ready
        done |= {layer.name for layer in ready}
        pending = [layer for layer in pending if layer.name not in done]
    return ordered


def snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``.

    Example:
        >>> snake_case("Conv2DTranspose"), snake_case("ReLU"), snake_case("BatchNormalization")
        ('conv2d_transpose', 're_lu', 'batch_normalization')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def weight_keys(config: dict) -> dict[str, str]:
    """Layer name -> the key Keras 3 stores its weights under (``layers/<key>/vars``): the snake-cased
    class name, numbered in the order of the model's layers (conv2d, conv2d_1, ...), not the layer name."""
    keys, used = {}, {}
    for raw in config["config"].get("layers", []):
        key = snake_case(raw.get("class_name") or "")
        used[key] = used.get(key, -1) + 1
        keys[raw.get("name") or raw["config"].get("name")] = f"{key}_{used[key]}" if used[key] else key
    return keys


def _depth(value) -> int:
    """Nesting depth of JSON data (iterative: a hostile file cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack += [(child, depth + 1) for child in children if isinstance(child, dict | list)]
    return deepest


def load_json(text: str | bytes, where: str | Path | None = None) -> dict:
    """A model config from JSON text; InputError when it is not JSON, too big or nested too deep."""
    check_limit("json_bytes", len(text), where, "bytes of JSON config")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        reason = "nested too deep" if isinstance(err, RecursionError) else str(err)
        raise InputError(where, f"holds no readable Keras model config ({reason})", _FIX) from err
    check_limit("json_depth", _depth(data), where, "levels of JSON nesting")
    return data


def _typed(value, kind: type, what: str, where):
    if not isinstance(value, kind):
        raise InputError(
            where, f"has a model config whose {what} is a {type(value).__name__}, not a {kind.__name__}", _FIX
        )
    return value


def _plain(value):
    """Tuples as SavedModel metadata encodes them (``{"class_name": "__tuple__", "items": [...]}``) -> lists."""
    if isinstance(value, dict):
        if value.get("class_name") == "__tuple__" and "items" in value:
            return [_plain(v) for v in value["items"]]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse_config(config: dict | str | bytes, where: str | Path | None = None) -> Graph:
    """Parse a Keras 2 or 3 functional-model config (dict or JSON text); InputError when unsupported."""
    if isinstance(config, bytes | str):
        config = load_json(config, where)
    check_limit("json_depth", _depth(config), where, "levels of JSON nesting")
    config = _plain(config)
    if not isinstance(config, dict) or "config" not in config:
        raise InputError(where, "is not a Keras model config", "give the JSON written by model.to_json()")
    if not isinstance(config.get("class_name"), str) or config["class_name"] not in ("Functional", "Model"):
        raise InputError(where, f"holds a {config.get('class_name')!r} model; discnet converts functional U-Nets", _FIX)
    body = _typed(config["config"], dict, "'config'", where)
    layers, input_shape = [], None
    for raw in _typed(body.get("layers", []), list, "'layers'", where):
        raw = _typed(raw, dict, "layer entry", where)
        class_name = _typed(raw.get("class_name"), str, "layer 'class_name'", where)
        cfg = _typed(raw.get("config") or {}, dict, f"'config' of a {class_name} layer", where)
        name = _typed(raw.get("name") or cfg.get("name"), str, f"name of a {class_name} layer", where)
        _refuse_code(raw, class_name, name, where)
        kind = KINDS[class_name]
        try:
            settings, inputs = layer_settings(kind, cfg), _inputs(raw)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise InputError(where, f"layer '{name}' ({class_name}): {err}", _FIX) from err
        if kind == "InputLayer":
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            if not isinstance(shape, list) or len(shape) != 4:
                raise InputError(where, f"input '{name}' has shape {shape}; a batch of 2D images is needed", _FIX)
            input_shape = settings["shape"] = list(shape[1:])
        layers.append(Layer(name, kind, settings, inputs))
    try:
        source, output = _endpoint(body.get("input_layers"), "input"), _endpoint(body.get("output_layers"), "output")
    except (ValueError, TypeError, IndexError) as err:
        raise InputError(where, f"the model {err}", "convert a model with one image input and one output") from err
    ordered = _order(layers, output, where)
    if ordered[0].name != source or ordered[0].kind != "InputLayer":
        raise InputError(where, "the model's output does not depend on its input layer alone", _FIX)
    return Graph(body.get("name", "model"), ordered, source, output, input_shape)

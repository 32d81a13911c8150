"""Read saved Keras models with h5py: the layer graph and every layer's weights, no TensorFlow needed.

Formats:

- Keras 2 HDF5 (``model.save("m.h5")``, TensorFlow 2.x): ``model_config`` attribute + ``model_weights``
  (weight names like ``conv2d/kernel:0``); Keras 3 writes the same layout for ``.h5``.
- Keras 3 archive (``.keras``): a zip holding ``config.json`` and ``model.weights.h5``
  (``layers/<name>/vars/<i>``).
- Bare weight files (``model.save_weights``: Keras 2 ``.h5`` or Keras 3 ``.weights.h5``) with the model
  config as JSON (``model.to_json()``), given explicitly or found beside them as ``<stem>.json``.
- A TensorFlow SavedModel folder: only when TensorFlow is installed (refused with how to export otherwise).

Example:
    >>> model = read_keras("tests/fixtures/keras/k2_unet_same_bn.h5")  # doctest: +SKIP
    >>> sorted(model.weights["conv2d"])  # doctest: +SKIP
    ['bias', 'kernel']
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from discnet.convert.keras_config import Graph, Layer, load_json, parse_config, weight_keys
from discnet.errors import InputError
from discnet.io.limits import check_limit, limit

_EXPORT = (
    'export it to .h5 where TensorFlow is installed: python -c "import tensorflow as tf; '
    "tf.keras.models.load_model('DIR', compile=False).save('model.h5')\" (TensorFlow >= 2.16: import tf_keras "
    "and use tf_keras.models.load_model), then convert model.h5"
)


@dataclass
class KerasModel:
    """A parsed Keras model: its graph and, per layer, its weights by role (``kernel``, ``moving_mean``, ...)."""

    graph: Graph
    weights: dict[str, dict[str, np.ndarray]]
    format: str
    keras_version: str | None
    source: Path


def roles(layer: Layer) -> list[str]:
    """The weights a layer stores, in Keras order."""
    s = layer.settings
    if layer.kind in ("Conv2D", "Conv2DTranspose"):
        return ["kernel", "bias"] if s["use_bias"] else ["kernel"]
    if layer.kind == "BatchNormalization":
        return ["gamma"] * s["scale"] + ["beta"] * s["center"] + ["moving_mean", "moving_variance"]
    return []


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _base(name: str) -> str:
    return name.split("/")[-1].split(":")[0]


def _layer_names(group: h5py.Group) -> list[str]:
    return [_text(n) for n in group.attrs.get("layer_names", [])]


def check_declared_weights(group: h5py.Group, where) -> None:
    """InputError when the datasets of an HDF5 file declare more bytes than the limit (nothing read)."""
    sizes = []
    group.visititems(
        lambda _, obj: sizes.append(obj.size * obj.dtype.itemsize) if isinstance(obj, h5py.Dataset) else None
    )
    check_limit("keras_weight_bytes", int(sum(sizes)), where, "bytes of weights")


def _member(archive: zipfile.ZipFile, name: str, where) -> bytes:
    """One file of a zip archive, decompressed to at most the limit (a zip bomb stops there)."""
    most = limit("archive_member_bytes")
    check_limit("archive_member_bytes", archive.getinfo(name).file_size, where, f"bytes in {name}")
    with archive.open(name) as f:
        data = f.read(most + 1)
    check_limit("archive_member_bytes", len(data), where, f"bytes in {name}")
    return data


def _keras2_weights(group: h5py.Group) -> dict[str, list[tuple[str | None, np.ndarray]]]:
    """Keras 2 layout: ``<layer>`` groups listing ``weight_names`` (also Keras 3's ``.h5``)."""
    found = {}
    for layer in _layer_names(group):
        g = group[layer]
        names = [_text(n) for n in g.attrs.get("weight_names", [])]
        found[layer] = [(_base(n), np.asarray(g[n], dtype=np.float32)) for n in names]
    return found


def _keras3_weights(group: h5py.Group, keys: dict[str, str]) -> dict[str, list[tuple[str | None, np.ndarray]]]:
    """Keras 3 layout: ``layers/<key>/vars/<i>`` (keys from :func:`weight_keys`)."""
    found, stored = {}, group.get("layers", {})
    for layer, key in keys.items():
        if key in stored:
            values = stored[key].get("vars", {})
            found[layer] = [(None, np.asarray(values[k], dtype=np.float32)) for k in sorted(values, key=int)]
    return found


def _match(graph: Graph, stored: dict, where) -> dict[str, dict[str, np.ndarray]]:
    """Weights by role for every layer that has weights; InputError when they do not fit the config."""
    weights = {}
    for layer in graph.layers:
        wanted = roles(layer)
        if not wanted:
            continue
        values = stored.get(layer.name)
        if values is None or len(values) != len(wanted):
            found = "none" if values is None else f"{len(values)} arrays"
            raise InputError(
                where,
                f"weights of layer '{layer.name}' do not fit its config (want {wanted}, found {found})",
                "give the weights saved from this very model",
            )
        names = [n for n, _ in values]
        if all(names) and sorted(names) == sorted(wanted):
            weights[layer.name] = {n: v for n, v in values}
        else:
            weights[layer.name] = {role: v for role, (_, v) in zip(wanted, values, strict=True)}
        _annotate(layer, weights[layer.name], where)
    return weights


def _annotate(layer: Layer, values: dict[str, np.ndarray], where) -> None:
    """Record the input channels (known only from the weights) so the graph can be rebuilt without them."""
    s = layer.settings
    if layer.kind in ("Conv2D", "Conv2DTranspose"):
        kernel = values["kernel"]
        in_axis = 2 if layer.kind == "Conv2D" else 3
        expected = [*s["kernel"], None, s["filters"]] if layer.kind == "Conv2D" else [*s["kernel"], s["filters"], None]
        if kernel.ndim != 4 or any(e is not None and e != k for e, k in zip(expected, kernel.shape, strict=True)):
            raise InputError(
                where,
                f"weights of layer '{layer.name}' do not fit its config (kernel shape {kernel.shape}, config {expected})",
                "give the weights saved from this very model",
            )
        s["in_channels"] = int(kernel.shape[in_axis]) * (s["groups"] if layer.kind == "Conv2D" else 1)
    if layer.kind == "BatchNormalization":
        s["channels"] = int(values["moving_mean"].shape[0])


def _sibling_config(path: Path) -> Path | None:
    name = path.name
    for suffix in (".weights.h5", ".h5", ".hdf5"):
        if name.lower().endswith(suffix):
            candidate = path.with_name(name[: -len(suffix)] + ".json")
            if candidate.is_file():
                return candidate
    return None


def _config_file(path: Path, config: str | Path | None) -> tuple[dict, Path]:
    found = Path(config) if config is not None else _sibling_config(path)
    if found is None:
        raise InputError(
            path,
            "holds weights only, without the model config",
            f"pass --config CONFIG.json (model.to_json()) or put it beside the weights as {path.stem}.json",
        )
    if not found.is_file():
        raise InputError(found, "model config not found", "give the JSON written by model.to_json()")
    return load_json(found.read_bytes(), found), found


def _from_hdf5(path: Path, config: str | Path | None) -> KerasModel:
    with h5py.File(path, "r") as f:
        version = _text(f.attrs["keras_version"]) if "keras_version" in f.attrs else None
        if "model_config" in f.attrs and config is None:
            raw, where, fmt = load_json(_text(f.attrs["model_config"]), path), path, "keras-h5"
        else:
            (raw, where), fmt = _config_file(path, config), "weights-h5"
        graph = parse_config(raw, where)
        check_declared_weights(f, path)
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in group.attrs:
            stored = _keras2_weights(group)
        elif "layers" in group:
            stored, fmt = _keras3_weights(group, weight_keys(raw)), "keras3-weights-h5"
        else:
            raise InputError(path, "is an HDF5 file without Keras weights", "give a file saved by Keras")
        return KerasModel(graph, _match(graph, stored, path), fmt, version, path)


def _from_archive(path: Path) -> KerasModel:
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if "config.json" not in names or "model.weights.h5" not in names:
            raise InputError(path, "is a zip file but not a Keras 3 model archive", "give a .keras file saved by Keras")
        raw = load_json(_member(z, "config.json", path), path)
        graph = parse_config(raw, path)
        metadata = load_json(_member(z, "metadata.json", path), path) if "metadata.json" in names else {}
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        with h5py.File(io.BytesIO(_member(z, "model.weights.h5", path)), "r") as f:
            check_declared_weights(f, path)
            stored = _keras3_weights(f, weight_keys(raw))
        return KerasModel(graph, _match(graph, stored, path), "keras3-archive", version, path)


def _keras_metadata_config(folder: Path) -> dict:
    """The model config recorded in a SavedModel's ``keras_metadata.pb`` (needs TensorFlow's protobufs)."""
    try:
        from tf_keras.protobuf import saved_metadata_pb2
    except ImportError:
        from tensorflow.python.keras.protobuf import saved_metadata_pb2
    meta = saved_metadata_pb2.SavedMetadata()
    meta.ParseFromString((folder / "keras_metadata.pb").read_bytes())
    root = next(node for node in meta.nodes if node.node_path == "root")
    data = json.loads(root.metadata)
    return {"class_name": data["class_name"], "config": data["config"]}


def _from_savedmodel(path: Path) -> KerasModel:
    if not (path / "saved_model.pb").is_file():
        raise InputError(path, "is a folder, not a Keras model file or TensorFlow SavedModel", "give the model file")
    try:
        import tensorflow as tf
    except ImportError as err:
        raise InputError(path, "is a TensorFlow SavedModel, which needs TensorFlow (not installed)", _EXPORT) from err
    if not (path / "keras_metadata.pb").is_file():
        raise InputError(path, "is a SavedModel without Keras metadata", "convert the .h5 or .keras file it came from")
    graph = parse_config(_keras_metadata_config(path), path)  # refuses code-carrying layers before loading
    try:
        import tf_keras as keras
    except ImportError:
        keras = tf.keras
    model = keras.models.load_model(str(path), compile=False)
    stored = {
        layer.name: [(_base(w.name), np.asarray(w.numpy(), dtype=np.float32)) for w in layer.weights]
        for layer in model.layers
    }
    return KerasModel(graph, _match(graph, stored, path), "savedmodel", getattr(keras, "__version__", None), path)


def read_keras(path: str | Path, config: str | Path | None = None) -> KerasModel:
    """Read a Keras model file (see the module docstring); InputError for anything unreadable or unsupported."""
    path = Path(path)
    if path.is_dir():
        return _from_savedmodel(path)
    if not path.is_file():
        raise InputError(path, "not found", "give the path of a Keras model (.h5, .keras, .weights.h5)")
    if zipfile.is_zipfile(path):
        try:
            return _from_archive(path)
        except (OSError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise InputError(path, f"is not a readable Keras archive ({err})", "save the model again") from err
    if h5py.is_hdf5(path):
        try:
            return _from_hdf5(path, config)
        except (OSError, KeyError) as err:
            raise InputError(path, f"is not a readable Keras HDF5 file ({err})", "save the model again") from err
    if path.suffix.lower() == ".json":
        raise InputError(path, "is a model config without weights", "give the weights file and pass this as --config")
    raise InputError(path, "is not a Keras model file", "give a .h5, .keras or .weights.h5 file saved by Keras")

"""Which runs are one model version: every setting in a run's ``config.yaml`` except the seed.

A sweep over seeds gives runs whose resolved configs differ only in the seed (and in paths and other
bookkeeping: :data:`IGNORED`). Runs with the same ``version`` name but a config that differs in anything
else (a ``model.net.dropout`` or ``image_size`` override, another data set) are *not* pooled:
:func:`version_names` names each such group ``<version> [key=value, ...]`` after the settings that tell
them apart. Setting ``version=NAME`` names a version; it never pools runs whose configs differ.

Example:
    >>> version_names([("v", {"image_size": 64}), ("v", {"image_size": 128}), ("w", None)])[0]
    ['v [image_size=64]', 'v [image_size=128]', 'w']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from discnet.models.run_folder import CONFIG

#: Settings that do not change what a run trains: its seed, where it writes, how it is logged or resumed,
#: and the version/round labels themselves.
IGNORED = (
    "seed",
    "data.seed",
    "paths",
    "hydra",
    "task_name",
    "ckpt_path",
    "skip_complete",
    "logger",
    "callbacks",
    "version",
    "round",
    "data.cache_dir",
    "data.num_workers",
    "allow_remote_checkpoints",
)


def _flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, Mapping):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _ignored(key: str) -> bool:
    return any(key == name or key.startswith(f"{name}.") for name in IGNORED)


def read_config(folder: str | Path) -> dict | None:
    """A run's resolved ``config.yaml`` flattened to ``{"model.net.dropout": 0.2, ...}``; None when absent.

    Raises ValueError when the file is not a YAML mapping.
    """
    path = Path(folder) / CONFIG
    if not path.is_file():
        return None
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{CONFIG} cannot be read ({err})") from err
    if not isinstance(tree, Mapping):
        raise ValueError(f"{CONFIG} is not a mapping of settings")
    return _flatten(tree)


def version_config(config: Mapping | None) -> dict | None:
    """The settings that define a version: the config without :data:`IGNORED` keys."""
    return None if config is None else {k: v for k, v in config.items() if not _ignored(k)}


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def version_names(runs: Sequence[tuple[str, Mapping | None]]) -> tuple[list[str], list[str]]:
    """Version name of each (version label, version config) and notes on labels split apart.

    Runs without a config (older runs) are pooled by their label among themselves.
    """
    keys = [None if c is None else json.dumps(dict(c), sort_keys=True, default=str) for _, c in runs]
    configs: dict[str, dict] = {}
    for (label, config), key in zip(runs, keys, strict=True):
        configs.setdefault(label, {})[key] = config
    names: dict[tuple[str, str | None], str] = {}
    notes = []
    for label, variants in configs.items():
        if len(variants) == 1:
            names[label, next(iter(variants))] = label
            continue
        known = [c for c in variants.values() if c is not None]
        differ = sorted({k for c in known for k in c if len({_text(o.get(k)) for o in known}) > 1})
        for key, config in variants.items():
            if config is None:
                names[label, key] = f"{label} [no {CONFIG}]"
            else:
                names[label, key] = f"{label} [{', '.join(f'{k}={_text(config.get(k))}' for k in differ)}]"
        notes.append(
            f"version {label}: its runs differ in {', '.join(differ) or CONFIG}; not pooled: "
            + "; ".join(sorted(names[label, k] for k in variants))
        )
    return [names[label, key] for (label, _), key in zip(runs, keys, strict=True)], notes

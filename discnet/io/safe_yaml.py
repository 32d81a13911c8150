"""Reading YAML that came with a file from elsewhere (a run's ``config.yaml`` beside a checkpoint).

Plain data only: ``yaml.SafeLoader`` with aliases refused (no billion-laughs expansion), a size limit,
and no interpolation (``${oc.env:HOME}`` and the like are refused, never resolved).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "config.yaml"
    >>> _ = p.write_text("image_size: 256\\n")
    >>> read_plain_yaml(p)
    {'image_size': 256}
"""

from __future__ import annotations

from pathlib import Path

import yaml

from discnet.errors import InputError
from discnet.io.limits import check_limit

_FIX = "fix or remove the file"


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``) instead of expanding them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "uses a YAML alias (refused)", mark)
        return super().compose_node(parent, index)


def _interpolations(data, where: str = "") -> str | None:
    """The key path of the first string holding ``${``, or None."""
    if isinstance(data, str):
        return where or "(top)" if "${" in data else None
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        found = _interpolations(value, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def read_plain_yaml(path: str | Path):
    """The plain data of a YAML file; InputError if it is too big, malformed, uses aliases or interpolations."""
    path = Path(path)
    check_limit("yaml_bytes", path.stat().st_size, path, "bytes")
    try:
        loader = _NoAliasLoader(path.read_text(encoding="utf-8"))
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        first = " ".join(str(err).split())[:160] or type(err).__name__
        raise InputError(path, f"cannot be read as plain YAML ({first})", _FIX) from err
    found = _interpolations(data)
    if found:
        raise InputError(path, f"holds an interpolation at {found} (refused, never resolved)", _FIX)
    return data

"""OmegaConf resolvers the Hydra configs use; registered when :mod:`discnet` is imported.

- ``${discnet_shared:}``: the folder holding the shared data: ``$DISCNET_SHARED_DIR`` when set, else
  ``../shared`` beside the source checkout discnet runs from (never the current directory), else
  ``shared`` in the current directory for an installed package without a checkout.

Example:
    >>> from omegaconf import OmegaConf
    >>> OmegaConf.create({"a": "${discnet_shared:}"}).a == str(shared_dir())
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

#: The source checkout's folder when discnet runs from one (it holds pyproject.toml beside the package).
CHECKOUT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """Where the shared data folder is (see the module docstring)."""
    if os.environ.get("DISCNET_SHARED_DIR"):
        return Path(os.environ["DISCNET_SHARED_DIR"])
    if (CHECKOUT / "pyproject.toml").is_file():
        return (CHECKOUT.parent / "shared").resolve()
    return Path.cwd() / "shared"


OmegaConf.register_new_resolver("discnet_shared", lambda: str(shared_dir()), replace=True)

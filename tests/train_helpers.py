"""Compose the training config in-process for tests (tiny model, tiny images)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"

TINY = ["image_size=32", "model.net.base_filters=4", "model.net.depth=2", "model.batch_size=8", "logger=csv"]


def tiny_config(manifest: Path, out: Path, *overrides: str):
    """The composed config of a tiny CPU run writing to ``out``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"data.manifest={manifest}", "trainer=cpu", *TINY, *overrides])
    with open_dict(cfg):
        cfg.paths.root_dir = str(out.parent)
        cfg.paths.output_dir = str(out)
        cfg.paths.cache_dir = str(out.parent / "cache")
        cfg.callbacks.pop("progress")
    return cfg

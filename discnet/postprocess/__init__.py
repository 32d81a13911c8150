"""Postprocessing of predicted disc masks: orphan removal and level naming (pure functions)."""

from discnet.postprocess.levels import DiscCountWarning, label_levels
from discnet.postprocess.orphans import (
    central_slice_index,
    disc_mask,
    orphan_report,
    remove_orphans,
    remove_orphans_labels,
)

__all__ = [
    "DiscCountWarning",
    "central_slice_index",
    "disc_mask",
    "label_levels",
    "orphan_report",
    "remove_orphans",
    "remove_orphans_labels",
]

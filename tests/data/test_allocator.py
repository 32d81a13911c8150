"""Keeping freed batch memory: glibc's thresholds raised once; the numbers stay the same."""

from __future__ import annotations

import ctypes
import platform

import pytest
import torch

from discnet.data.allocator import keep_freed_memory
from discnet.data.augment import augment_batch, augment_config, batch_generator


def _glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's")
def test_applied_on_glibc():
    assert keep_freed_memory() is True and hasattr(ctypes.CDLL(None), "mallopt")


def test_augmented_batches_are_the_same_with_the_allocator_kept():
    cfg = augment_config({"rotation_p": 1.0, "elastic_p": 1.0, "blur_p": 1.0, "noise_p": 1.0})
    x, y = torch.rand(4, 1, 64, 64), (torch.rand(4, 64, 64) > 0.5).to(torch.uint8)
    before = augment_batch(x, y, cfg, batch_generator(0, 0, 0))
    keep_freed_memory()
    after = augment_batch(x, y, cfg, batch_generator(0, 0, 0))
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])

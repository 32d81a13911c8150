"""Keeping freed batch memory: glibc's thresholds raised (the datamodule test checks when it is asked for)."""

from __future__ import annotations

import ctypes
import platform

import pytest

from discnet.data.allocator import keep_freed_memory


def _glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's")
def test_applied_on_glibc():
    assert keep_freed_memory() is True and hasattr(ctypes.CDLL(None), "mallopt")

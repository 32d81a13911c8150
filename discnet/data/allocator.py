"""Keeping freed tensor memory in the process, so large batch buffers are not page-faulted in anew.

glibc returns freed blocks above its mmap threshold (and heap tops above its trim threshold) to the
operating system; the next batch's buffers of the same size are then mapped and zero-filled by the
kernel again. On-the-fly augmentation at 512 px makes several such buffers per batch (grids, resampled
slices), and on a 2-core CPU the page faults cost as much as the resampling itself (measured: 361.6
-> 555.8 augmented slices/s, ``experiments/benchmarks/results-cpu-allocator.json``). PyTorch's CPU
tuning guide preloads jemalloc or tcmalloc for the same reason; :func:`keep_freed_memory` does it with glibc's own ``mallopt``: blocks up
to 32 MiB come from the heap, and up to 1 GiB of freed heap is kept. Numbers are unchanged, only where
memory comes from. Elsewhere than glibc (macOS, musl) it does nothing.

Example:
    >>> keep_freed_memory() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import functools

#: glibc's mallopt parameters (malloc.h) and the values set.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest on 64-bit systems
TRIM_THRESHOLD = 1024 * 1024 * 1024


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); whether it was applied."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))

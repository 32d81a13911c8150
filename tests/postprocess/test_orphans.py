"""Orphan removal (paper 2.6): each rule, the central slice, fixed point, purity, and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from discnet.postprocess import central_slice_index, orphan_report, remove_orphans, remove_orphans_labels


def column(n_slices: int = 5, size: int = 12) -> np.ndarray:
    """A disc column: a 4 x 4 square (16 pixels) at the same place in every sagittal slice."""
    mask = np.zeros((n_slices, size, size), bool)
    mask[:, 3:7, 3:7] = True
    return mask


def violations(mask: np.ndarray, min_pixels: int, connectivity: int) -> list[str]:
    """Naive reference check, area by area: which rule each area of ``mask`` breaks."""
    if not mask.any():
        return []
    central = mask[central_slice_index(mask)]
    found = []
    for x, plane in enumerate(mask):
        lab, n = ndimage.label(plane, ndimage.generate_binary_structure(2, connectivity))
        for i in range(1, n + 1):
            area = lab == i
            neighbours = [mask[j] for j in (x - 1, x + 1) if 0 <= j < len(mask)]
            if area.sum() < min_pixels:
                found.append(f"size {x}/{i}")
            if not (area & central).any():
                found.append(f"central {x}/{i}")
            if not any((area & nb).any() for nb in neighbours):
                found.append(f"neighbour {x}/{i}")
    return found


def test_size_rule_removes_9_pixels_keeps_10():
    nine, ten = column(), column()
    nine[:, 8:11, 8:11] = True  # a second column of 3 x 3 = 9 pixels per slice
    ten[:, 8:10, 6:11] = True  # 2 x 5 = 10 pixels per slice, not touching the disc
    assert np.array_equal(remove_orphans(nine), column())
    assert np.array_equal(remove_orphans(ten), ten)
    assert orphan_report(nine)["removed_areas"] == {"size": 5, "central": 0, "neighbour": 0}
    assert np.array_equal(remove_orphans(nine, min_pixels=9), nine)


def test_central_rule_removes_area_off_the_central_slice():
    mask = column()
    mask[2, 2:8, 2:8] = True  # a larger central slice
    keep = mask.copy()
    mask[3:5, 8:12, 8:12] = True  # overlaps its neighbour (slices 3 and 4) but not slice 2
    report = orphan_report(mask)
    assert report["central_slice"] == 2
    assert report["removed_areas"] == {"size": 0, "central": 2, "neighbour": 0}
    assert report["removed_voxels"]["central"] == 32
    assert np.array_equal(remove_orphans(mask), keep)


def test_neighbour_rule_removes_area_without_overlap_in_adjacent_slices():
    mask = column()
    mask[2, 2:10, 2:10] = True  # a large central slice
    keep = mask.copy()
    mask[0, 8:10, 2:7] = True  # overlaps the central slice, but nothing in slice 1 below it
    mask[2, 11, 0:10] = True  # a 10-pixel island of the central slice, alone in its column
    report = orphan_report(mask)
    assert report["central_slice"] == 2
    assert report["removed_areas"] == {"size": 0, "central": 0, "neighbour": 2}
    assert np.array_equal(remove_orphans(mask), keep)


def test_realistic_disc_is_kept_whole():
    x, y, z = np.ogrid[:15, :40, :30]
    disc = ((x - 7) / 6.5) ** 2 + ((y - 20) / 15) ** 2 + ((z - 15) / 5) ** 2 <= 1
    assert np.array_equal(remove_orphans(disc), disc)
    assert violations(disc, 10, 2) == []


def test_fixed_point_removes_area_whose_only_neighbour_was_removed():
    mask = np.zeros((4, 12, 12), bool)
    mask[1:4, 3:7, 3:7] = True
    mask[2, 2:12, 2:12] = True  # central slice
    mask[1, 9:12, 9:12] = True  # B: 9 pixels, removed by size
    mask[0, 9:12, 8:12] = True  # A: 12 pixels, its only neighbour is B
    report = orphan_report(mask)
    assert report["removed_areas"] == {"size": 1, "central": 0, "neighbour": 1}
    assert report["rounds"] == 2  # B fails the size rule, round 1 removes A, round 2 changes nothing
    out = remove_orphans(mask)
    assert not out[0].any()
    assert np.array_equal(remove_orphans(out), out)


def test_connectivity_parameter():
    mask = column(size=16)
    mask[:, 9:12, 9:12] = True  # two 3 x 3 squares touching at one corner: 18 pixels if 8-connected
    mask[:, 12:15, 12:15] = True
    assert np.array_equal(remove_orphans(mask, connectivity=2), mask)
    assert np.array_equal(remove_orphans(mask, connectivity=1), column(size=16))
    with pytest.raises(ValueError, match="connectivity"):
        remove_orphans(mask, connectivity=3)


def test_pure_returns_new_array_and_never_adds():
    mask = column()
    mask[0, 10, 10] = True
    before = mask.copy()
    out = remove_orphans(mask)
    orphan_report(mask)
    assert np.array_equal(mask, before)
    assert out.dtype == bool and not np.shares_memory(out, mask)
    assert not (out & ~mask).any()
    clean = column()
    assert not np.shares_memory(remove_orphans(clean), clean)


def test_empty_mask():
    empty = np.zeros((3, 5, 5), bool)
    assert not remove_orphans(empty).any()
    assert orphan_report(empty)["central_slice"] is None
    with pytest.raises(ValueError, match="empty"):
        central_slice_index(empty)


def test_bad_input():
    with pytest.raises(ValueError, match="3D"):
        remove_orphans(np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="central_slice"):
        remove_orphans(column(), central_slice=5)


def test_central_slice_is_lower_median_slice_of_disc_voxels():
    assert central_slice_index(column(7)) == 3
    assert central_slice_index(column(4)) == 1  # even: the lower of the two middle slices
    one = np.zeros((6, 4, 4), bool)
    one[4, 1, 1] = True
    assert central_slice_index(one) == 4
    gap = np.zeros((4, 4, 4), bool)
    gap[[0, 3]] = True
    assert central_slice_index(gap) == 0  # never an empty slice


def test_central_slice_ignores_distance_of_false_positives():
    mask = np.zeros((40, 12, 12), bool)
    mask[10:21, 3:7, 3:7] = True  # disc column centred on slice 15
    near, far = mask.copy(), mask.copy()
    near[22, :6, :6] = True  # a lateral false positive of 36 voxels, near or far from the spine
    far[39, :6, :6] = True
    assert central_slice_index(mask) == 15
    assert central_slice_index(near) == central_slice_index(far) == 16
    assert round(np.nonzero(far)[0].mean()) == 19  # the centre of mass would be pulled away


def test_central_slice_can_be_given():
    mask = column()
    mask[3:5, 8:12, 8:12] = True
    assert np.array_equal(remove_orphans(mask, central_slice=4), mask)
    assert orphan_report(mask, central_slice=4)["central_slice"] == 4


def test_labels_keep_values_and_decide_on_nonzero():
    labels = column().astype(np.uint8) * 3
    labels[:, 8:10, 6:9] = 1  # 6 + 4 pixels of two labels form one 10-pixel area
    labels[:, 8:10, 9:11] = 2
    labels[1, 0, 11] = 4  # an orphan
    before = labels.copy()
    out = remove_orphans_labels(labels)
    assert np.array_equal(labels, before)
    assert out.dtype == np.uint8
    expected = labels.copy()
    expected[1, 0, 11] = 0
    assert np.array_equal(out, expected)


@st.composite
def small_masks(draw):
    """Small masks, bit by bit or at a random density (sparser masks make removal cascades likely)."""
    shape = draw(st.tuples(st.integers(1, 6), st.integers(1, 8), st.integers(1, 8)))
    if draw(st.booleans()):
        return draw(arrays(bool, shape, elements=st.booleans()))
    density = draw(st.floats(0.1, 0.6))
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(shape) < density


@settings(max_examples=200, deadline=None)
@given(small_masks(), st.integers(1, 6), st.sampled_from([1, 2]))
def test_properties_subset_idempotent_and_all_rules_hold(mask, min_pixels, connectivity):
    out = remove_orphans(mask, min_pixels=min_pixels, connectivity=connectivity)
    assert not (out & ~mask).any()
    assert np.array_equal(remove_orphans(out, min_pixels=min_pixels, connectivity=connectivity), out)
    assert violations(out, min_pixels, connectivity) == []


@settings(max_examples=100, deadline=None)
@given(small_masks().filter(lambda m: m.any()))
def test_central_slice_is_a_weighted_median(mask):
    xc = central_slice_index(mask)
    counts = mask.reshape(len(mask), -1).sum(axis=1)
    assert counts[xc] > 0
    assert 2 * counts[: xc + 1].sum() >= counts.sum()
    assert 2 * counts[xc:].sum() >= counts.sum()


def test_real_masks_lose_almost_nothing(lumbar_dir):
    nib = pytest.importorskip("nibabel")
    image = nib.as_closest_canonical(nib.load(lumbar_dir / "sub11_discs.nii.gz"))
    mask = np.asarray(image.dataobj) > 0
    out = remove_orphans(mask)
    assert central_slice_index(mask) == 32  # disc voxels span sagittal slices 10-52
    assert (mask & ~out).sum() <= 0.001 * mask.sum()

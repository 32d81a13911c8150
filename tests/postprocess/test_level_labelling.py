"""Level naming of disc components: world-coordinate order, count mismatches, label values, purity."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from discnet.postprocess import DiscCountWarning, label_levels
from discnet.spine import DEFAULT_LABELS, LEVELS

# Array axis 0 runs superior -> inferior, axis 1 anterior -> posterior, axis 2 left -> right (I, P, R),
# as in ../shared/data/lumbar-t2.
IPR = np.array([[0, 0, 1.0, 0], [0, -1.0, 0, 0], [-1.0, 0, 0, 0], [0, 0, 0, 1]])


def blobs(centres, shape=(30, 12, 12), half=1) -> np.ndarray:
    """Cubes of side ``2 * half + 1`` voxels at the given voxel centres."""
    mask = np.zeros(shape, bool)
    for i, j, k in centres:
        mask[i - half : i + half + 1, j - half : j + half + 1, k - half : k + half + 1] = True
    return mask


def no_warning(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscCountWarning)
        return label_levels(*args, **kwargs)


def test_non_ras_array_is_named_in_world_order():
    centres = [(3, 2, 9), (8, 4, 7), (13, 6, 5), (18, 8, 3), (24, 9, 2)]  # axis 0 = superior -> inferior
    lab, info = no_warning(blobs(centres), IPR)
    assert [d["level"] for d in info["discs"]] == list(LEVELS)
    for (i, j, k), level in zip(centres, LEVELS, strict=True):
        assert lab[i, j, k] == DEFAULT_LABELS[level]
    assert info["discs"][0]["centroid_mm"] == pytest.approx((9.0, -2.0, -3.0))
    assert info["discs"][0]["voxels"] == 27
    assert lab.dtype == np.uint8


def test_superior_axis_found_whatever_the_array_order():
    # Axis 1 runs superior -> inferior, with oblique tilt; axis 0 order contradicts the level order.
    angle = np.deg2rad(15)
    rot = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.array([[0.5, 0, 0], [0, 0, 1.2], [0, -3.5, 0]])
    affine[:3, 3] = (-10.0, 20.0, 30.0)
    centres = [(9, 2, 6), (7, 7, 6), (5, 12, 6), (3, 17, 6), (1, 22, 6)]
    lab, info = no_warning(blobs(centres, shape=(12, 25, 12)), affine)
    assert [lab[c] for c in centres] == [DEFAULT_LABELS[level] for level in LEVELS]
    z = [d["centroid_mm"][2] for d in info["discs"]]
    assert z == sorted(z, reverse=True)


def test_a_stray_component_is_dropped_with_a_warning():
    mask = blobs([(3, 5, 5), (8, 5, 5), (13, 5, 5), (18, 5, 5), (23, 5, 5)])
    mask[0, 0:5, 0] = True  # a stray 5-voxel component (19% of a disc), most superior
    with pytest.warns(DiscCountWarning, match="found 6 disc components, expected 5"):
        lab, info = label_levels(mask, IPR)
    assert lab[0, 0, 0] == 0
    assert [d["level"] for d in info["discs"]] == list(LEVELS)
    assert info["dropped"] == [{"level": None, "label": None, "voxels": 5, "centroid_mm": (0.0, -2.0, 0.0)}]
    assert info["found"] == 6 and info["expected"] == 5 and not info["fragments"]
    mask[0, 1:5, 0] = False  # one voxel left: a fragment, quietly dropped
    lab, info = no_warning(mask, IPR)
    assert info["found"] == 5 and len(info["fragments"]) == 1 and lab[0, 0, 0] == 0


def six_discs(partial_row: int) -> np.ndarray:
    """Six 27-voxel discs at rows 2, 7, ..., 27 (row 0 superior); the one at ``partial_row`` keeps 18 voxels."""
    mask = blobs([(row, 5, 5) for row in range(2, 30, 5)])
    mask[partial_row - 1, 4:7, 4:7] = False
    return mask


def test_extra_disc_above_l1_l2_drops_a_smaller_l5_s1_unless_the_anchor_end_is_kept():
    # T12-L1 (27 voxels) at the top of the field of view, L5-S1 partly found (18 voxels), as on sub20:
    # keeping the five largest (the default) keeps T12-L1, drops L5-S1 and shifts every name by one.
    mask = six_discs(partial_row=27)
    with pytest.warns(DiscCountWarning, match="kept the 5 largest"):
        lab, info = label_levels(mask, IPR)
    assert lab[27, 5, 5] == 0 and lab[2, 5, 5] == DEFAULT_LABELS["L1-L2"] and lab[22, 5, 5] == DEFAULT_LABELS["L5-S1"]
    with pytest.warns(DiscCountWarning, match="kept the 5 nearest the inferior end"):
        lab, info = label_levels(mask, IPR, surplus="anchor")
    assert [d["level"] for d in info["discs"]] == list(LEVELS)
    assert [lab[c] for c in [(7, 5, 5), (27, 5, 5)]] == [DEFAULT_LABELS["L1-L2"], DEFAULT_LABELS["L5-S1"]]
    assert lab[2, 5, 5] == 0 and [d["voxels"] for d in info["dropped"]] == [27]


@pytest.mark.parametrize(
    ("partial_row", "anchor", "surplus", "dropped_row"),
    [(27, "inferior", "anchor", 2), (27, "inferior", None, 27), (27, "superior", "anchor", 27),
     (2, "superior", "anchor", 27), (2, "superior", "largest", 2)],
)  # fmt: skip
def test_which_disc_is_dropped_depends_on_the_rule_and_the_anchor(partial_row, anchor, surplus, dropped_row):
    # Six discs, one smaller (partly found, or a false positive in the sacrum as on sub25): the anchor rule
    # drops the disc farthest from the anchor end whatever its size, so a false positive beyond the anchor
    # end is kept and named; the default drops the smallest.
    with pytest.warns(DiscCountWarning, match="found 6"):
        rule = {} if surplus is None else {"surplus": surplus}
        lab, info = label_levels(six_discs(partial_row), IPR, anchor=anchor, **rule)
    kept_rows = [row for row in range(2, 30, 5) if row != dropped_row]
    assert [int(lab[row, 5, 5]) for row in kept_rows] == [DEFAULT_LABELS[level] for level in LEVELS]
    assert lab[dropped_row, 5, 5] == 0 and info["dropped"][0]["centroid_mm"][2] == pytest.approx(-dropped_row, abs=0.5)


def test_real_mask_with_an_extra_disc_above_keeps_its_names_with_the_anchor_rule(lumbar_dir):
    nib = pytest.importorskip("nibabel")
    image = nib.load(lumbar_dir / "sub20_discs.nii.gz")  # native (I, P, R): axis 0 runs inferior
    labels = np.asarray(image.dataobj)
    l1, l2 = DEFAULT_LABELS["L1-L2"], DEFAULT_LABELS["L2-L3"]
    rows = [np.argwhere(labels == value)[:, 0].mean() for value in (l1, l2)]
    step = int(round(rows[1] - rows[0]))  # one disc spacing, in rows (L2-L3 lies below: a larger row)
    extra = np.roll(labels == l1, -abs(step), axis=0)  # a copy of L1-L2 one spacing higher: "T12-L1"
    assert np.argwhere(extra)[:, 0].max() < rows[0] and not (extra & (labels > 0)).any()  # above, not wrapped
    partial = labels.copy()
    l5 = np.argwhere(labels == DEFAULT_LABELS["L5-S1"])
    partial[tuple(l5[: len(l5) // 2].T)] = 0  # half of L5-S1 found: smaller than the extra disc
    with pytest.warns(DiscCountWarning, match="found 6"):
        lab, info = label_levels((partial > 0) | extra, image.affine, surplus="anchor")
    assert np.array_equal(lab, partial) and info["dropped"][0]["voxels"] == int(extra.sum())
    with pytest.warns(DiscCountWarning, match="found 6"):
        lab, info = label_levels((partial > 0) | extra, image.affine)
    assert not lab[tuple(l5[len(l5) // 2 :].T)].any() and (lab[extra] == DEFAULT_LABELS["L1-L2"]).all()


@pytest.mark.parametrize(
    ("anchor", "names"),
    [("inferior", ["L2-L3", "L3-L4", "L4-L5", "L5-S1"]), ("superior", ["L1-L2", "L2-L3", "L3-L4", "L4-L5"])],
)
def test_fewer_components_named_from_anchor(anchor, names):
    centres = [(3, 5, 5), (8, 5, 5), (13, 5, 5), (18, 5, 5)]
    with pytest.warns(DiscCountWarning, match=f"expected 5.*{anchor} end"):
        lab, info = label_levels(blobs(centres), IPR, anchor=anchor)
    assert [d["level"] for d in info["discs"]] == names
    assert [lab[c] for c in centres] == [DEFAULT_LABELS[n] for n in names]


def test_expected_count_is_configurable():
    centres = [(3, 5, 5), (8, 5, 5), (13, 5, 5), (18, 5, 5)]
    lab, info = no_warning(blobs(centres), IPR, expected=4)
    assert [d["level"] for d in info["discs"]] == ["L2-L3", "L3-L4", "L4-L5", "L5-S1"]


def test_empty_mask_warns_and_labels_nothing():
    with pytest.warns(DiscCountWarning, match="nothing to label"):
        lab, info = label_levels(np.zeros((4, 4, 4), bool), IPR)
    assert not lab.any() and info["discs"] == [] and info["found"] == 0


def test_connectivity_parameter():
    mask = blobs([(3, 5, 5), (6, 8, 8)])  # cubes touching at one corner voxel pair
    assert label_levels(mask, IPR, expected=1)[1]["found"] == 1
    with pytest.warns(DiscCountWarning):
        assert label_levels(mask, IPR, expected=1, connectivity=1)[1]["found"] == 2


def test_values_follow_levels_csv(lumbar_dir):
    with open(lumbar_dir / "levels.csv", newline="") as f:
        from_csv = {row["level"]: int(row["label"]) for row in csv.DictReader(f)}
    assert from_csv == DEFAULT_LABELS
    ivd = {"L5-S1": 51, "L4-L5": 102, "L3-L4": 153, "L2-L3": 204, "L1-L2": 255}  # ivd-volumes/levels.csv
    centres = [(3, 5, 5), (8, 5, 5), (13, 5, 5), (18, 5, 5), (23, 5, 5)]
    lab, _ = no_warning(blobs(centres), IPR, label_values=ivd)
    assert [int(lab[c]) for c in centres] == [255, 204, 153, 102, 51]


def test_real_masks_are_relabelled_exactly(lumbar_dir):
    nib = pytest.importorskip("nibabel")
    image = nib.load(lumbar_dir / "sub11_discs.nii.gz")  # native (I, P, R) array
    labels = np.asarray(image.dataobj)
    lab, info = no_warning(labels > 0, image.affine)
    assert np.array_equal(lab, labels)
    assert [d["level"] for d in info["discs"]] == list(LEVELS)


def test_input_not_modified():
    mask = blobs([(3, 5, 5), (8, 5, 5)]).astype(np.uint8)
    affine = IPR.copy()
    before = mask.copy()
    with pytest.warns(DiscCountWarning):
        label_levels(mask, affine)
    assert np.array_equal(mask, before) and np.array_equal(affine, IPR)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"anchor": "middle"}, "anchor"),
        ({"surplus": "smallest"}, "surplus"),
        ({"expected": 6}, "expected"),
        ({"connectivity": 4}, "connectivity"),
        ({"label_values": {"L1-L2": 1}}, "no value"),
        ({"label_values": dict.fromkeys(LEVELS, 300)}, "uint8"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        label_levels(blobs([(3, 5, 5)]), IPR, **kwargs)


def test_a_fragment_is_not_counted_as_a_disc():
    # Real sub20: L5-S1 missed, a 392-voxel piece of T12-L1 at the top of a 4-disc mask (~12000 voxels
    # each) named L1-L2 shifted every name by one, silently. Fragments are dropped before counting.
    mask = blobs([(8, 4, 6), (14, 4, 6), (20, 4, 6), (26, 4, 6)], shape=(32, 12, 12), half=2)  # 125 each
    mask[1, 4, 6] = True  # a 1-voxel fragment above them
    with pytest.warns(DiscCountWarning, match="found 4 disc components, expected 5"):
        lab, info = label_levels(mask, IPR)
    assert [d["level"] for d in info["discs"]] == ["L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert [f["voxels"] for f in info["fragments"]] == [1] and lab[1, 4, 6] == 0
    assert info["found"] == 4 and not info["dropped"]
    _, kept_all = no_warning(mask, IPR, min_fraction=0)  # the old behaviour: 5 "discs", names shifted
    assert kept_all["discs"][0]["voxels"] == 1 and kept_all["discs"][0]["level"] == "L1-L2"

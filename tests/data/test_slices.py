"""Slice pipeline: orientation of slices, resizing, contrast stretch, the paper's four inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from discnet.data.intensity import stretch, stretch_slices
from discnet.data.preprocess import InputConfig, prepare_volume
from discnet.data.slices import from_slices, resize_back, resize_images, resize_labels, to_slices
from discnet.io import Volume, read_volume


@pytest.mark.parametrize("shape", [(1, 4, 5), (3, 7, 2), (6, 16, 16)])
def test_slices_round_trip(shape):
    ras = np.random.default_rng(0).random(shape)
    slices = to_slices(ras)
    assert slices.shape == (shape[0], shape[2], shape[1])
    np.testing.assert_array_equal(from_slices(slices), ras)


def test_slice_orientation_superior_up_anterior_left():
    ras = np.zeros((1, 4, 6))  # x, y (P->A), z (I->S)
    ras[0, 3, 5] = 1  # most anterior, most superior voxel
    assert to_slices(ras)[0, 0, 0] == 1


@given(n=st.integers(1, 3), h=st.integers(1, 40), w=st.integers(1, 40), size=st.sampled_from([8, 16, 33]))
@settings(max_examples=30, deadline=None)
def test_resize_back_output_grid_equals_input_grid(n, h, w, size):
    slices = torch.rand(n, h, w)
    small = resize_images(slices, size)
    assert small.shape == (n, size, size)
    assert resize_back(small[:, None], (h, w)).shape == (n, 1, h, w)


def test_resize_labels_keeps_values():
    labels = torch.zeros(2, 20, 30, dtype=torch.uint8)
    labels[:, 5:15, 10:20] = 1
    out = resize_labels(labels, 64)
    assert out.dtype == torch.uint8 and set(out.unique().tolist()) == {0, 1}


def test_stretch_maps_percentiles_exactly():
    values = np.random.default_rng(1).normal(500, 100, size=(20, 30, 40)).astype(np.float32)
    lo, hi = np.percentile(values, [2.5, 97.5])
    out = stretch(values)
    assert out.min() == 0 and out.max() == 255
    ramp = stretch(np.arange(1001, dtype=np.float32))  # percentiles 2.5 and 97.5 are 25 and 975
    assert (ramp[25], ramp[975], ramp[500], ramp[0], ramp[1000]) == (0, 255, 127.5, 0, 255)
    inside = (values > lo) & (values < hi)
    np.testing.assert_allclose(out[inside], (values[inside] - lo) / (hi - lo) * 255, rtol=1e-5, atol=1e-3)


def test_stretch_does_not_modify_input_and_handles_constant():
    values = np.arange(100, dtype=np.float32)
    copy = values.copy()
    stretch(values, 10, 90)
    np.testing.assert_array_equal(values, copy)
    assert not stretch(np.full((4, 4), 7.0)).any()
    per_slice = stretch_slices(np.stack([values, values * 10]))
    np.testing.assert_allclose(per_slice[0], per_slice[1], atol=1e-4)


@pytest.fixture(scope="module")
def sub11(lumbar_dir):
    return read_volume(lumbar_dir / "sub11_T2w.nii.gz"), read_volume(lumbar_dir / "sub11_discs.nii.gz", kind="label")


def test_blank_slice_count_real(sub11):
    stack = prepare_volume(*sub11, InputConfig(name="raw", delete_blanks=False, stretch="none"), size=64)
    assert len(stack.images) == 67 and int(stack.has_disc.sum()) == 43
    assert stack.native_shape == (221, 221) and stack.native_labels.shape == (67, 221, 221)


@pytest.mark.parametrize(
    "cfg, n_train",
    [
        (InputConfig(name="raw", delete_blanks=False, stretch="none"), 67),
        (InputConfig(name="deleted_blanks", stretch="none"), 43),
        (InputConfig(name="stretched"), 43),
        (InputConfig(name="augmented", augment_copies=1), 86),
    ],
)
def test_four_inputs_training_counts(sub11, cfg, n_train):
    stack = prepare_volume(*sub11, cfg, size=32, augment_rng=np.random.default_rng(0))
    images, labels = stack.training_pairs(cfg.delete_blanks)
    assert len(images) == len(labels) == n_train
    assert len(stack.images) == 67  # validation and prediction keep every slice


def test_stretched_inputs_are_bounded_and_raw_are_not(sub11):
    raw = prepare_volume(*sub11, InputConfig(stretch="none"), size=32).images.float()
    stretched = prepare_volume(*sub11, InputConfig(stretch="volume"), size=32).images.float()
    assert stretched.min() >= 0 and stretched.max() <= 1.0
    assert raw.max() > 1.5


def test_augmented_copies_differ_and_are_seeded(sub11):
    cfg = InputConfig(name="augmented", augment_copies=1)
    a = prepare_volume(*sub11, cfg, size=32, augment_rng=np.random.default_rng(0))
    b = prepare_volume(*sub11, cfg, size=32, augment_rng=np.random.default_rng(0))
    torch.testing.assert_close(a.extra_images, b.extra_images)
    assert not torch.equal(a.extra_images, a.images[torch.as_tensor(a.has_disc)])


def test_prepare_volume_shapes_any_orientation():
    array = np.random.default_rng(0).random((30, 20, 6)).astype(np.float32)  # I, P, R like lumbar-t2
    affine = np.array([[0, 0, 3.0, 0], [0, -0.5, 0, 0], [-0.5, 0, 0, 0], [0, 0, 0, 1]])
    stack = prepare_volume(Volume(array, affine), None, InputConfig(), size=16)
    assert stack.images.shape == (6, 16, 16) and stack.native_shape == (30, 20)


@pytest.mark.parametrize("scope", ["volume", "slice"])
def test_input4_copy_uses_input3s_normalisation_scope(sub11, scope, monkeypatch):
    """At the base percentiles, the augmented copy must equal Input 3's slices exactly."""
    from discnet.data import preprocess

    monkeypatch.setattr(preprocess, "random_lower_percentiles", lambda n, rng, top: np.full(n, 2.5))
    cfg = InputConfig(name="augmented", augment_copies=1, stretch=scope, lower=2.5, upper=97.5)
    stack = prepare_volume(*sub11, cfg, size=32, augment_rng=np.random.default_rng(0))
    torch.testing.assert_close(stack.extra_images, stack.images[torch.as_tensor(stack.has_disc)], rtol=0, atol=0)


@pytest.mark.parametrize(("h", "w", "size"), [(30, 20, 16), (20, 30, 32), (25, 25, 8)])
def test_pad_fit_keeps_the_aspect_ratio_and_resizes_back_exactly(h, w, size):
    from discnet.data.slices import resize_back, resize_images, resize_labels

    label = torch.zeros(1, h, w, dtype=torch.uint8)
    label[0, h // 4 : h // 2, w // 4 : w // 2] = 1
    padded = resize_labels(label, size, fit="pad")
    assert padded.shape == (1, size, size)
    side = max(h, w)  # the slice fills the square only along its longer side
    rows, cols = (padded[0] > 0).any(1).sum(), (padded[0] > 0).any(0).sum()
    stretched = resize_labels(label, size, fit="stretch")[0]
    assert (rows, cols) != ((stretched > 0).any(1).sum(), (stretched > 0).any(0).sum()) or h == w
    assert abs(float(rows) / float(cols) - (h // 2 - h // 4) / (w // 2 - w // 4)) < 0.35 * max(1, side / size)
    image = resize_images(label.float(), size, fit="pad")
    back = resize_back(image[:, None], (h, w), fit="pad")[:, 0]
    assert back.shape == (1, h, w)
    assert ((back > 0.5) == label.bool()).float().mean() > 0.95


def test_neighbour_rows_stay_inside_each_scan():
    from discnet.data.slices import neighbour_rows

    rows = neighbour_rows(4, 2, offset=10)
    assert rows.shape == (4, 5) and rows.min() == 10 and rows.max() == 13
    assert rows[:, 2].tolist() == [10, 11, 12, 13]

"""On-the-fly augmentation: reproducible, image and label warped together, the paper's preset a no-op."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from discnet.data.augment import augment_batch, batch_generator
from discnet.data.augment_config import AugmentConfig, augment_config

FEW = augment_config(
    {
        "rotation_p": 0.2, "scaling_p": 0.2, "elastic_p": 0.2, "mirror_p": 0.5, "noise_p": 0.1, "blur_p": 0.2,
        "brightness_p": 0.15, "contrast_p": 0.15, "lowres_p": 0.25, "gamma_p": 0.3, "scaling": [0.7, 1.4],
    }
)  # fmt: skip


def _batch(n=6, channels=1, size=48):
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    label = ((yy - size // 2).abs() < size // 6) & ((xx - size // 3).abs() < size // 5)
    labels = label[None].repeat(n, 1, 1).to(torch.uint8)
    images = (0.2 + 0.6 * labels.float())[:, None].repeat(1, channels, 1, 1)
    return images, labels


@pytest.mark.parametrize(("n", "channels", "size"), [(1, 1, 32), (6, 1, 48), (4, 3, 64)])
def test_shapes_dtypes_and_binary_labels_are_kept(n, channels, size):
    images, labels = _batch(n, channels, size)
    out, lab = augment_batch(images, labels, FEW, batch_generator(0, 0, 0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert lab.shape == labels.shape and lab.dtype == torch.uint8 and set(lab.unique().tolist()) <= {0, 1}


def test_the_papers_preset_changes_nothing():
    images, labels = _batch()
    out, lab = augment_batch(images, labels, AugmentConfig(), batch_generator(0, 0, 0))
    assert out is images and lab is labels and not AugmentConfig().active


def test_same_seed_epoch_and_step_give_the_same_batch_whatever_was_drawn_before():
    images, labels = _batch()
    first = augment_batch(images, labels, FEW, batch_generator(3, 2, 17))
    torch.rand(1000)  # global draws in between change nothing
    again = augment_batch(images, labels, FEW, batch_generator(3, 2, 17))
    other = augment_batch(images, labels, FEW, batch_generator(3, 2, 18))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_inputs_are_not_modified():
    images, labels = _batch()
    before = images.clone(), labels.clone()
    augment_batch(
        images, labels, dataclasses.replace(FEW, gamma_p=1.0, noise_p=1.0, mirror_p=1.0), batch_generator(0, 0, 0)
    )
    assert torch.equal(images, before[0]) and torch.equal(labels, before[1])


@pytest.mark.parametrize("transform", ["rotation_p", "scaling_p", "elastic_p", "mirror_p"])
def test_spatial_transforms_move_image_and_label_together(transform):
    images, labels = _batch(n=8, size=64)
    cfg = dataclasses.replace(AugmentConfig(), **{transform: 1.0, "elastic_magnitude": 0.03})
    out, lab = augment_batch(images, labels, cfg, batch_generator(1, 0, 0))
    assert not torch.equal(lab, labels)  # the label moved
    # the image is 0.2 outside and 0.8 inside the disc: its threshold is the warped label
    agreement = ((out[:, 0] > 0.5) == lab.bool()).float().mean()
    assert agreement > 0.99


@pytest.mark.parametrize("transform", ["noise_p", "blur_p", "brightness_p", "contrast_p", "lowres_p", "gamma_p"])
def test_intensity_transforms_change_the_image_only(transform):
    images, labels = _batch(n=4)
    images = images + 0.1 * torch.rand(images.shape, generator=torch.Generator().manual_seed(0))
    cfg = dataclasses.replace(AugmentConfig(), **{transform: 1.0})
    out, lab = augment_batch(images, labels, cfg, batch_generator(0, 0, 0))
    assert torch.equal(lab, labels) and not torch.allclose(out, images)
    off = augment_batch(images, labels, dataclasses.replace(cfg, **{transform: 0.0}), batch_generator(0, 0, 0))
    assert torch.equal(off[0], images)


def test_probabilities_are_per_slice():
    images, labels = _batch(n=200, size=16)
    out, _ = augment_batch(
        images, labels, dataclasses.replace(AugmentConfig(), brightness_p=0.3), batch_generator(0, 0, 0)
    )
    changed = (out != images).flatten(1).any(1).float().mean()
    assert 0.2 < changed < 0.4


def test_a_probability_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="gamma_p"):
        augment_config({"gamma_p": 1.5})


@pytest.mark.parametrize("transform", ["rotation_p", "scaling_p", "elastic_p"])
def test_a_spatial_transform_leaves_the_slices_it_skips_bit_identical(transform):
    images, labels = _batch(n=40, size=24)
    out, out_labels = augment_batch(
        images, labels, dataclasses.replace(AugmentConfig(), **{transform: 0.3}), batch_generator(0, 0, 0)
    )
    kept = ~(out != images).flatten(1).any(1)
    assert 0 < int(kept.sum()) < len(images)
    assert torch.equal(out[kept], images[kept]) and torch.equal(out_labels[kept], labels[kept])


@pytest.mark.parametrize(("angle", "zoom", "size"), [(0.3, 1.0, (40, 56)), (-0.2, 1.3, (56, 40)), (0.0, 0.8, (33, 33))])
def test_the_rotation_and_zoom_grid_resamples_as_monais_warp_does(angle, zoom, size):
    """The rotation and zoom grid is the same geometry as a displacement field in pixels resampled by
    MONAI's Warp."""
    import warnings

    import torch.nn.functional as F

    from discnet.data.augment import _sampling_grid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from monai.networks.blocks import Warp
    h, w = size
    image = torch.rand(1, 2, h, w, generator=torch.Generator().manual_seed(0))
    r, c = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    ddf = torch.stack([cos * r - sin * c - r, sin * r + cos * c - c])[None].float()  # rows, columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = Warp(mode="bilinear", padding_mode="zeros")(image, ddf)
    grid = _sampling_grid(torch.tensor([angle]), torch.tensor([zoom]), None, size)
    got = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_the_blur_is_monais_gaussian_filter(sigma):
    import warnings

    from discnet.data.augment import _blur

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from monai.networks.layers import GaussianFilter
    x = torch.rand(1, 3, 30, 41, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(_blur(x, sigma), GaussianFilter(spatial_dims=2, sigma=sigma)(x), atol=1e-5, rtol=0)


def test_zooming_in_enlarges_the_disc():
    images, labels = _batch(n=4, size=64)
    cfg = dataclasses.replace(AugmentConfig(), scaling_p=1.0, scaling=(1.3, 1.4))
    _, lab = augment_batch(images, labels, cfg, batch_generator(0, 0, 0))
    assert (lab.flatten(1).sum(1) > 1.5 * labels.flatten(1).sum(1)).all()


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (512, 512)])
def test_the_elastic_grid_is_the_affine_grid_plus_the_bicubically_upsampled_displacement(size):
    """The displacement, upsampled by two matmuls, is F.interpolate's bicubic upsampling of the draws,
    added in normalised units (columns to x, rows to y)."""
    import torch.nn.functional as F

    from discnet.data.augment import _sampling_grid

    h, w = size
    g = torch.Generator().manual_seed(0)
    angle, zoom, noise = torch.tensor([0.2, -0.1]), torch.tensor([1.1, 0.9]), torch.randn(2, 2, 8, 8, generator=g)
    field = F.interpolate(noise, size=size, mode="bicubic", align_corners=True).flip(1).permute(0, 2, 3, 1)
    expected = _sampling_grid(angle, zoom, None, size) + field * torch.tensor([2 / (w - 1), 2 / (h - 1)])
    got = _sampling_grid(angle, zoom, noise, size)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_the_mirror_folded_into_the_warp_is_the_warp_then_a_flip():
    """A warped slice that is also mirrored samples column W-1-c of the warp (one resampling, no flip)."""
    import torch.nn.functional as F

    from discnet.data.augment import _sampling_grid

    g = torch.Generator().manual_seed(3)
    image = torch.rand(2, 1, 40, 56, generator=g)
    angle, zoom, noise = torch.tensor([0.2, -0.3]), torch.tensor([1.2, 0.9]), torch.randn(2, 2, 8, 8, generator=g)
    plain = F.grid_sample(image, _sampling_grid(angle, zoom, noise, (40, 56)), align_corners=True)
    mirrored = _sampling_grid(angle, zoom, noise, (40, 56), torch.tensor([True, False]))
    got = F.grid_sample(image, mirrored, align_corners=True)
    torch.testing.assert_close(got[0], plain[0].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(got[1], plain[1], atol=1e-6, rtol=0)


def test_warped_labels_are_sampled_by_nearest_neighbour():
    """The warped mask takes, at each pixel, the label of the input pixel nearest to where it samples the
    image: labels 0/1 only, never a blend."""
    import torch.nn.functional as F

    images, labels = _batch(n=8, size=64)
    cfg = dataclasses.replace(AugmentConfig(), rotation_p=1.0, scaling_p=1.0)
    _, lab = augment_batch(images, labels, cfg, batch_generator(2, 0, 0))
    # the same draws, resampled with the image's grid: nearest on the mask
    from discnet.data.augment import _sampling_grid

    g = batch_generator(2, 0, 0)
    angle = torch.where(torch.rand(8, generator=g) < 1.0, torch.rand(8, generator=g) * 2 - 1, torch.zeros(8))
    zoom_low, zoom_high = cfg.scaling
    zoom = torch.where(
        torch.rand(8, generator=g) < 1.0, zoom_low + (zoom_high - zoom_low) * torch.rand(8, generator=g), torch.ones(8)
    )
    grid = _sampling_grid(angle * math.radians(cfg.rotation_deg), zoom, None, (64, 64))
    expected = F.grid_sample(labels[:, None].float(), grid, "nearest", "zeros", align_corners=True)[:, 0]
    assert torch.equal(lab, expected.to(lab.dtype))


def test_warped_slices_keep_their_mirror_and_the_draws_keep_their_order():
    """Through augment_batch: with every slice rotated, the mirrored ones (the mirror draw comes after
    rotation, scaling and elastic's) are the unmirrored batch flipped, the others unchanged."""
    images, labels = _batch(n=8, size=48)
    cfg = dataclasses.replace(AugmentConfig(), rotation_p=1.0, mirror_p=0.5)
    out, lab = augment_batch(images, labels, cfg, batch_generator(5, 0, 0))
    plain, plain_lab = augment_batch(images, labels, dataclasses.replace(cfg, mirror_p=0.0), batch_generator(5, 0, 0))
    g = batch_generator(5, 0, 0)
    for _ in range(5):  # rotation chosen, angle, scaling chosen, zoom, elastic chosen
        torch.rand(8, generator=g)
    torch.randn(8, 2, 8, 8, generator=g)  # the elastic draws
    mirrored = torch.rand(8, generator=g) < 0.5
    assert 0 < int(mirrored.sum()) < 8
    torch.testing.assert_close(out[mirrored], plain[mirrored].flip(-1), atol=1e-5, rtol=0)
    assert (lab[mirrored] != plain_lab[mirrored].flip(-1)).float().mean() < 0.01
    assert torch.equal(out[~mirrored], plain[~mirrored]) and torch.equal(lab[~mirrored], plain_lab[~mirrored])


def test_double_images_are_warped_in_double():
    images, labels = _batch(n=2, size=32)
    out, _ = augment_batch(
        images.double(), labels, dataclasses.replace(AugmentConfig(), rotation_p=1.0), batch_generator(0, 0, 0)
    )
    assert out.dtype == torch.float64


def test_a_gamma_range_reaching_zero_is_refused():
    with pytest.raises(ValueError, match="gamma"):
        AugmentConfig(gamma=(0.0, 1.5))


@pytest.mark.parametrize("threads", [1, 3])
def test_the_warp_does_not_depend_on_how_many_slices_are_resampled_at_a_time(threads):
    """On a CPU the warped slices go through grid_sample as many at a time as there are threads."""
    images, labels = _batch(n=7)
    cfg = dataclasses.replace(FEW, rotation_p=0.7, scaling_p=0.5, elastic_p=0.5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        chunked = augment_batch(images, labels, cfg, batch_generator(1, 0, 4))
        torch.set_num_threads(8)
        whole = augment_batch(images, labels, cfg, batch_generator(1, 0, 4))
    finally:
        torch.set_num_threads(before)
    assert not torch.equal(whole[1], labels)  # slices were warped, in more than one chunk when threads=1
    torch.testing.assert_close(chunked[0], whole[0], atol=1e-6, rtol=0)
    assert torch.equal(chunked[1], whole[1])


@pytest.mark.parametrize("size", [48, 47])  # 47 rows: not split into two bands
def test_a_slice_resampled_alone_goes_through_bands_of_rows_with_the_same_result(size):
    """grid_sample spreads only the batch over the threads: a lone slice is resampled as one band per thread."""
    images, labels = _batch(n=1, size=size)
    cfg = dataclasses.replace(AugmentConfig(), rotation_p=1.0, elastic_p=1.0, elastic_magnitude=0.03)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        whole = augment_batch(images, labels, cfg, batch_generator(0, 0, 2))
        torch.set_num_threads(2)
        banded = augment_batch(images, labels, cfg, batch_generator(0, 0, 2))
    finally:
        torch.set_num_threads(before)
    assert not torch.equal(whole[1], labels)
    assert torch.equal(banded[0], whole[0]) and torch.equal(banded[1], whole[1])


@pytest.mark.parametrize("shape", [(6, 1, 48, 48), (5, 3, 40, 56)])
def test_in_place_the_batch_itself_gets_the_values_of_the_copy(shape):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(*shape, generator=g)
    labels = (torch.rand(shape[0], *shape[2:], generator=g) > 0.5).to(torch.uint8)
    cfg = dataclasses.replace(FEW, rotation_p=0.5, elastic_p=0.3)
    original = images.clone()
    copy = augment_batch(images, labels, cfg, batch_generator(0, 0, 1))
    own = images.clone(), labels.clone()
    done = augment_batch(*own, cfg, batch_generator(0, 0, 1), inplace=True)
    assert done[0] is own[0] and done[1] is own[1]
    assert torch.equal(done[0], copy[0]) and torch.equal(done[1], copy[1])
    assert torch.equal(images, original) and not torch.equal(copy[0], images)  # the copy left its input alone

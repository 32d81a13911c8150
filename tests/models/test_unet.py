"""U-Net geometry, parameter budget and options (small CPU inputs only)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from discnet.models import UNet, count_parameters, filters_for_params, unet_parameter_count

ORIGINAL_PARAMS = 31_030_658  # Ronneberger U-Net, 1 input channel, 2 classes


def test_original_parameter_count():
    net = UNet()
    assert net.base_filters == 64
    assert count_parameters(net) == ORIGINAL_PARAMS


@pytest.mark.parametrize(("fraction", "width"), [(1.0, 64), (0.75, 55), (0.5, 45)])
def test_parameter_fraction_within_3_percent(fraction, width):
    net = UNet(params=fraction)
    assert net.base_filters == filters_for_params(fraction) == width
    ratio = count_parameters(net) / ORIGINAL_PARAMS
    assert ratio == pytest.approx(fraction, rel=0.03)


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize(("width", "depth", "in_channels", "classes"), [(8, 4, 1, 2), (5, 2, 3, 4), (3, 1, 1, 1)])
def test_closed_form_count_matches_module(width, depth, in_channels, classes, norm):
    kwargs = dict(in_channels=in_channels, num_classes=classes, depth=depth, norm=norm)
    assert count_parameters(UNet(base_filters=width, **kwargs)) == unet_parameter_count(width, **kwargs)


def test_invalid_params_fraction():
    with pytest.raises(ValueError, match="positive"):
        filters_for_params(0)


@pytest.mark.parametrize(("depth", "size"), [(1, 16), (2, 32), (3, 48), (4, 64), (4, 32)])
def test_same_padding_keeps_size(depth, size):
    net = UNet(base_filters=4, depth=depth, num_classes=3)
    out = net(torch.randn(2, 1, size, size + 2**depth))
    assert out.shape == (2, 3, size, size + 2**depth)


@pytest.mark.parametrize("size", [30, 63, 100])
def test_same_padding_rejects_bad_size(size):
    net = UNet(base_filters=4)
    with pytest.raises(ValueError, match="multiple of 2\\*\\*depth = 16"):
        net(torch.zeros(1, 1, size, 64))


def test_valid_padding_geometry_of_ronneberger():
    net = UNet(base_filters=4, padding="valid")
    assert net.output_size(572) == 388
    assert net.input_size_for_output(388) == 572
    assert net.valid_input_size(1) == 188
    assert net.valid_input_size(189) == 204  # valid sizes are 188 + 16k
    with pytest.raises(ValueError, match="does not fit"):
        net.output_size(570)
    assert net(torch.randn(1, 1, 188, 204)).shape == (1, 2, 4, 20)


def test_valid_padding_with_dilation():
    net = UNet(base_filters=2, depth=2, padding="valid", dilation=2)
    size = net.valid_input_size(40)
    assert net(torch.randn(1, 1, size, size)).shape[-1] == net.output_size(size)


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_dilation_keeps_size_in_same_mode(dilation):
    net = UNet(base_filters=4, depth=2, dilation=dilation)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert all(c.dilation == (dilation, dilation) and c.padding == (dilation, dilation) for c in convs)
    assert net(torch.randn(1, 1, 36, 36)).shape == (1, 2, 36, 36)


@pytest.mark.parametrize(("norm", "expected"), [("none", 0), ("batch", 18)])
def test_batch_norm_present_or_absent(norm, expected):
    net = UNet(base_filters=4, norm=norm)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == expected
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 18
    assert all((c.bias is None) == (norm == "batch") for c in convs)


def test_dropout_active_in_train_only():
    torch.manual_seed(0)
    net = UNet(base_filters=4, depth=2, dropout=0.5)
    x = torch.randn(1, 1, 32, 32)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))
    assert UNet(base_filters=4, dropout=0.8).dropout.p == 0.8


@pytest.mark.parametrize(
    "kwargs", [dict(norm="group"), dict(padding="reflect"), dict(depth=0), dict(dropout=1.0), dict(base_filters=0)]
)
def test_bad_options_raise(kwargs):
    with pytest.raises(ValueError):
        UNet(**kwargs)


def test_gradients_reach_every_parameter():
    net = UNet(base_filters=4, depth=3, norm="batch")
    logits = net(torch.randn(2, 1, 32, 32))
    nn.functional.cross_entropy(logits, torch.randint(0, 2, (2, 32, 32))).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)


def test_channels_last_and_bf16_autocast():
    torch.manual_seed(0)
    net = UNet(base_filters=4, depth=2).to(memory_format=torch.channels_last).eval()
    x = torch.randn(1, 1, 32, 32).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert out.dtype == torch.bfloat16 and out.shape == (1, 2, 32, 32)
    assert torch.allclose(out.float(), net(x), atol=0.1, rtol=0.1)


def test_hydra_instantiation():
    from hydra.utils import instantiate

    net = instantiate({"_target_": "discnet.models.UNet", "params": 0.5, "dropout": 0.2, "padding": "same"})
    assert isinstance(net, UNet) and net.base_filters == 45 and net.output_size(512) == 512


@pytest.mark.parametrize(("fraction", "width"), [(1.0, 8), (0.75, 7), (0.5, 6)])
def test_reference_filters_scale_the_family_down(fraction, width):
    net = UNet(params=fraction, reference_filters=8, depth=2)
    assert net.base_filters == width
    full = unet_parameter_count(8, depth=2)
    assert abs(count_parameters(net) / full - fraction) < 0.15

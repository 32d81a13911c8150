"""Inference backends (discnet/inference/backends.py): same probabilities as eager PyTorch, same Dice on a real scan."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from discnet.data.preprocess import input_presets
from discnet.errors import InputError
from discnet.evaluation.metrics import dice
from discnet.inference.backends import BACKENDS, TOLERANCE, Backend, prepare, resolve
from discnet.inference.predict import predict_volume
from discnet.inference.probability import disc_probability
from discnet.io import read_volume
from discnet.models.unet import UNet
from tests.paths import REPO


def _installed(name: str) -> bool:
    try:
        resolve(name)
    except InputError:
        return False
    return True


def _net(padding: str = "same", context: int = 0) -> UNet:
    torch.manual_seed(0)
    return UNet(base_filters=4, depth=2, padding=padding, in_channels=1 + 2 * context).eval()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("padding", "context", "size"), [("same", 0, 32), ("valid", 0, 28), ("same", 1, 48)])
def test_backends_give_the_pytorch_probabilities(backend, padding, context, size):
    if not _installed(backend):
        pytest.skip(f"{backend} not installed")
    net = _net(padding, context)
    images = torch.rand(5, size, size, generator=torch.Generator().manual_seed(1)).half()
    expected = disc_probability([net], images, (size + 6, size - 4), batch_size=2)  # last batch smaller
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = prepare(net, backend, channels_last=True)
    got = disc_probability([fast], images, (size + 6, size - 4), batch_size=2)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert not np.allclose(got, got.mean())  # a real map, not a constant
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the network is not changed
    assert all(p.is_contiguous() for p in net.parameters())


def test_channels_last_off_keeps_the_network_itself():
    net = _net()
    assert prepare(net, "torch", channels_last=False) is net
    assert isinstance(prepare(net, "torch", channels_last=True), Backend)


@pytest.mark.parametrize(
    ("backend", "device", "expected"),
    [
        ("auto", "cpu", None),
        ("auto", "meta", "torch"),
        ("torch", "cpu", "torch"),
        ("torchscript", "meta", "torchscript"),
    ],
)
def test_resolve_names_a_backend(backend, device, expected):
    from discnet.inference.backends import CPU_AUTO

    assert resolve(backend, device) == (expected or CPU_AUTO)


@pytest.mark.parametrize(("backend", "device"), [("fastest", "cpu"), ("onnxruntime", "meta"), ("openvino", "meta")])
def test_resolve_refuses_unknown_or_cpu_only_backends_elsewhere(backend, device):
    with pytest.raises(InputError, match="backend"):
        resolve(backend, device)


def test_predict_cli_refuses_bf16_with_a_float32_backend(tmp_path, capsys):
    from discnet.cli import main

    args = ["predict", "--ckpt", str(tmp_path / "m.ckpt"), str(tmp_path), "--out-dir", str(tmp_path / "o")]
    code = main([*args, "--backend", "onnxruntime", "--precision", "bf16"])
    assert code == 2
    assert "--backend onnxruntime runs float32 only" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["auto", *BACKENDS[1:]])
def test_predict_cli_backend_writes_the_pytorch_probabilities(tmp_path, backend):
    from discnet.cli import main
    from tests.inference.test_predict import save_checkpoint, synthetic

    if not _installed(backend):
        pytest.skip(f"{backend} not installed")
    ckpt = save_checkpoint(tmp_path / "m.ckpt", seed=3)
    scan, _ = synthetic(tmp_path)
    maps = {}
    for name in ("torch", backend):
        out = tmp_path / name
        args = ["predict", "--ckpt", str(ckpt), str(scan), "--out-dir", str(out), "--probabilities", "--device", "cpu"]
        assert main([*args, "--backend", name, "--batch-size", "4"]) == 0
        maps[name] = read_volume(out / "scan_prob.nii.gz").array
    assert maps["torch"].std() > 0
    assert np.abs(maps[backend] - maps["torch"]).max() <= TOLERANCE


def test_real_scan_dice_is_the_same_with_every_backend(lumbar_dir):
    scan = read_volume(lumbar_dir / "sub11_T2w.nii.gz")
    truth = read_volume(lumbar_dir / "sub11_discs.nii.gz", kind="label").array > 0
    net = _net()
    with torch.no_grad():
        net.head.bias.copy_(torch.tensor([0.0, 0.35]))  # a fixed net that finds some voxels
    scores = {}
    for backend in [name for name in BACKENDS if _installed(name)]:
        labels, _, _ = predict_volume([prepare(net, backend)], scan, input_presets()["stretched"], 64, batch_size=4)
        assert labels.any()
        scores[backend] = dice(labels > 0, truth)
    assert scores["torch"] > 0
    assert all(abs(score - scores["torch"]) <= 1e-3 for score in scores.values()), scores


@pytest.mark.slow
def test_bench_backends_section_writes_its_table(tmp_path):
    import json
    import subprocess
    import sys

    repo = REPO
    command = [sys.executable, str(repo / "experiments/benchmarks/bench.py"), "--quick", "--repeats", "1"]
    command += ["--sections", "backends", "--train-step", "32", "1", "-o", str(tmp_path)]
    subprocess.run(command, check=True, capture_output=True, cwd=repo)
    results = json.loads((tmp_path / "results-quick-backends.json").read_text())["backends"]
    assert {"torch (today: contiguous)", "MONAI SliceInferer", *BACKENDS[1:]} <= set(results["network"])
    assert results["end_to_end"]["speedup"] > 0 and results["training_channels_last_speedup"] > 0
    table = (tmp_path / "results-quick-backends.md").read_text()
    assert "| onnxruntime |" in table and "| end-to-end predict / today's fp32 path >= 1.5 |" in table

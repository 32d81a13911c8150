"""discnet export: TorchScript and ONNX files that reproduce the PyTorch network (ONNX checked with
onnxruntime, skipped when it is not installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from discnet.cli import main
from discnet.convert import convert_keras
from discnet.convert.export import export_network
from discnet.errors import InputError
from discnet.models.checkpoint import PREFIX, load_net
from discnet.models.unet import UNet
from tests.paths import FIXTURES

FIXTURES = FIXTURES / "keras"
needs_onnxruntime = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs onnxruntime")


def discnet_checkpoint(path: Path, **net) -> Path:
    """A checkpoint in discnet's training layout holding a U-Net with random weights and batch-norm statistics."""
    unet = UNet(**net)
    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    state = {PREFIX + k: v for k, v in unet.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"net": net, "image_size": 32}}, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("export")
    trained = dict(base_filters=4, depth=2, norm="batch", dropout=0.2)
    out = {"trained": discnet_checkpoint(folder / "trained.ckpt", **trained)}
    out["valid"] = folder / "valid.ckpt"
    convert_keras(FIXTURES / "k2_unet_valid_dilated.h5", out["valid"])
    out["generic"] = folder / "generic.ckpt"
    convert_keras(FIXTURES / "k3_strided.weights.h5", out["generic"])
    return out


def reference(path: Path, x: torch.Tensor) -> np.ndarray:
    net, _ = load_net(path)
    with torch.no_grad():
        return net(x).numpy()


def test_torchscript_matches_pytorch_at_any_size(checkpoints, tmp_path):
    for name, output, shape in (("trained", 32, (3, 1, 48, 64)), ("valid", 12, (1, 1, 100, 96))):
        out = tmp_path / f"{name}.pt"
        done = export_network(checkpoints[name], out, "torchscript", image_size=output)  # traced at 32 / 92
        assert done.max_difference is not None and done.max_difference < 1e-4
        loaded = torch.jit.load(str(out))
        for x in (torch.rand(shape),):
            with torch.no_grad():
                got = loaded(x).numpy()
            np.testing.assert_allclose(got, reference(checkpoints[name], x), rtol=0, atol=1e-4)


@needs_onnxruntime
def test_onnx_matches_pytorch_with_dynamic_batch_and_size(checkpoints, tmp_path):
    import onnxruntime

    out = tmp_path / "unet.onnx"
    done = export_network(checkpoints["trained"], out, "onnx")
    assert done.output == "logits" and done.max_difference < 1e-4
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 1, 48, 48)
    (got,) = session.run(None, {"image": x.numpy()})
    np.testing.assert_allclose(got, reference(checkpoints["trained"], x), rtol=0, atol=1e-4)


@needs_onnxruntime
def test_generic_converted_model_exports_the_keras_outputs(checkpoints, tmp_path):
    import onnxruntime

    out = tmp_path / "generic.onnx"
    assert export_network(checkpoints["generic"], out, "onnx").output == "output"
    x = np.load(FIXTURES / "k3_strided.input.npy").astype(np.float32).transpose(0, 3, 1, 2)
    expected = np.load(FIXTURES / "k3_strided.output.npy").transpose(0, 3, 1, 2)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"image": x})[0], expected, rtol=0, atol=1e-4)
    with pytest.raises(InputError, match="drop --probabilities"):
        export_network(checkpoints["generic"], tmp_path / "g.pt", "torchscript", probabilities=True)


def test_probabilities_and_cli(checkpoints, tmp_path, capsys):
    out = tmp_path / "probs.pt"
    args = ["export", str(checkpoints["trained"]), "--format", "torchscript", "-o", str(out), "--probabilities"]
    assert main(args) == 0
    assert "output 'probabilities'" in capsys.readouterr().out
    with torch.no_grad():
        probs = torch.jit.load(str(out))(torch.rand(1, 1, 32, 32))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(1, 32, 32))
    assert main(["export", str(tmp_path / "missing.ckpt"), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()


def test_onnx_without_the_onnx_package_says_what_to_install(checkpoints, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(InputError, match=r"discnet\[onnx\]"):
        export_network(checkpoints["trained"], tmp_path / "x.onnx", "onnx")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize(
    "offset, code",
    [(1.83e-4, 0), (0.5, 2), (None, 2)],  # fp32 rounding (the 0.000183), a wrong export, a failing exporter
    ids=["fp32 rounding", "wrong export", "exporter fails"],
)
def test_onnx_check_tolerates_fp32_and_any_failure_is_one_line(
    offset, code, checkpoints, tmp_path, monkeypatch, capsys
):
    def fake_onnx(module, x, path, output, dynamic_size):
        if offset is None:
            raise RuntimeError("ONNX export failed: Couldn't export operator\nlong internal details")
        path.write_bytes(b"onnx")
        with torch.no_grad():
            return module(x).numpy() + offset

    monkeypatch.setattr("discnet.convert.export._onnx", fake_onnx)
    out = tmp_path / "net.onnx"
    capsys.readouterr()
    assert main(["export", str(checkpoints["trained"]), "--format", "onnx", "-o", str(out)]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert out.is_file() == (code == 0) and list(tmp_path.iterdir()) == ([out] if code == 0 else [])
    if code:
        assert len(err) == 1 and err[0].startswith("discnet export: error:"), err
        assert ("differs from PyTorch by 0.5" if offset else "onnx export failed (RuntimeError") in err[0]


@pytest.mark.parametrize("recorded, expected", [(32, 32), (None, 256)])
def test_check_input_is_the_models_own_size(tmp_path, recorded, expected):
    """The check input's side is the recorded image size (checkpoint, else its run's config.yaml), else 256."""
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    ckpt = discnet_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", base_filters=4, depth=2)
    checkpoint = torch.load(ckpt, weights_only=True)
    del checkpoint["hyper_parameters"]["image_size"]
    torch.save(checkpoint, ckpt)
    if recorded is not None:
        (tmp_path / "run" / "config.yaml").write_text(f"image_size: {recorded}\n")
    done = export_network(ckpt, tmp_path / "unet.pt", "torchscript")
    assert done.input_shape == (1, 1, expected, expected)

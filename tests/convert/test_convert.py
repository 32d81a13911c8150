"""Keras -> PyTorch conversion, proven on real Keras files (tests/fixtures/keras, made with TensorFlow by
make_fixtures.py there): outputs match Keras, code-carrying models are refused, converted U-Nets are
normal discnet checkpoints (load_net, predict, fine-tuning)."""

from __future__ import annotations

import builtins
import importlib.util
import json
import marshal
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from discnet.cli import main
from discnet.convert import (
    KerasGraphNet,
    KerasUNet,
    convert_keras,
    keras_to_torch,
    load_converted,
    read_keras,
)
from discnet.convert.keras_config import parse_config
from discnet.errors import InputError
from discnet.models.checkpoint import load_net
from discnet.models.unet import UNet
from tests.paths import FIXTURES

FIXTURES = FIXTURES / "keras"
#: (model file, arrays stem, the discnet U-Net it maps onto: (depth, dilation, padding, norm, dropout) or None)
CASES = [
    ("k2_unet_same_bn.h5", "k2_unet_same_bn", (1, 1, "same", "batch", 0.8)),
    ("k2_unet_valid_dilated.h5", "k2_unet_valid_dilated", (2, 2, "valid", "none", 0.2)),  # one-channel sigmoid
    ("k3_unet_same.keras", "k3_unet_same", (1, 1, "same", "none", 0.2)),  # any input size, Softmax layer
    ("k3_unet_valid_bn.keras", "k3_unet_valid_bn", (1, 1, "valid", "batch", 0.2)),
    ("k3_upsampling_dilated_bn.keras", "k3_upsampling_dilated_bn", None),
    ("k2_bilinear_add.h5", "k2_bilinear_add", None),  # Keras 2 weights only, k2_bilinear_add.json beside
    ("k3_strided.weights.h5", "k3_strided", None),  # Keras 3 weights only, k3_strided.json beside
    ("k3_strided.h5", "k3_strided", None),  # Keras 3 writing the legacy HDF5 layout
]


def keras_arrays(stem: str) -> tuple[torch.Tensor, np.ndarray]:
    """The Keras input as N x 1 x H x W and the Keras output as N x C x H' x W'."""
    x = np.load(FIXTURES / f"{stem}.input.npy").astype(np.float32)
    y = np.load(FIXTURES / f"{stem}.output.npy")
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), y.transpose(0, 3, 1, 2)


def run(net: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(x).numpy()


@pytest.mark.parametrize(("name", "stem", "unet"), CASES, ids=[c[0] for c in CASES])
def test_converted_module_returns_the_keras_output(name, stem, unet):
    x, expected = keras_arrays(stem)
    assert expected.std() > 0.03  # the fixture's weights make a non-trivial output
    mapped, generic = keras_to_torch(FIXTURES / name), keras_to_torch(FIXTURES / name, generic=True)
    assert isinstance(generic, KerasGraphNet) and isinstance(mapped, KerasUNet) == (unet is not None)
    if unet is not None:
        net = mapped.net
        assert isinstance(net, UNet) and net.base_filters == 4
        norm = "batch" if isinstance(net.down[0][1], torch.nn.BatchNorm2d) else "none"
        assert (net.depth, net.dilation, net.padding, norm, net.dropout.p) == pytest.approx(unet)
    for module in (mapped, generic):
        got = run(module, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["k2_lambda.h5", "k3_lambda.keras"])
def test_lambda_layers_are_refused_without_running_code(name, monkeypatch):
    read_keras(FIXTURES / "k3_strided.h5")  # everything the reader needs is imported

    def forbidden(*args, **kwargs):
        raise AssertionError("code from the model file was about to run")

    for target, attr in ((marshal, "loads"), (pickle, "loads"), (builtins, "eval"), (builtins, "exec")):
        monkeypatch.setattr(target, attr, forbidden)
    with pytest.raises(InputError, match="Lambda layer holding Python code"):
        keras_to_torch(FIXTURES / name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"class_name": "TFOpLambda"}, "TFOpLambda layer holding Python code"),
        ({"class_name": "MyBlock", "module": "my_package.layers"}, "custom or unsupported layer"),
        ({"class_name": "Conv2D", "registered_name": "Custom>Conv2D"}, "custom or unsupported layer"),
    ],
)
def test_custom_and_tensorflow_op_layers_are_refused(change, message):
    config = json.loads((FIXTURES / "k3_strided.json").read_text())
    config["config"]["layers"][1].update(change)
    with pytest.raises(InputError, match=message):
        parse_config(config, "model.json")


def test_custom_activation_is_refused():
    config = json.loads((FIXTURES / "k3_strided.json").read_text())
    config["config"]["layers"][1]["config"]["activation"] = {"module": "mine", "class_name": "MyAct", "config": {}}
    with pytest.raises(InputError, match="not a standard Keras activation"):
        parse_config(config, "model.json")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed")
def test_savedmodel_without_tensorflow_says_how_to_export(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(InputError, match=r"needs TensorFlow.*\.save\('model\.h5'\)"):
        keras_to_torch(tmp_path)


def test_bare_weights_need_their_config(tmp_path):
    weights = shutil.copy(FIXTURES / "k3_strided.weights.h5", tmp_path / "model.weights.h5")
    with pytest.raises(InputError, match="without the model config"):
        read_keras(weights)
    x, expected = keras_arrays("k3_strided")
    got = run(keras_to_torch(weights, config=FIXTURES / "k3_strided.json"), x)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    with pytest.raises(InputError, match="do not fit its config"):
        read_keras(weights, config=FIXTURES / "k2_bilinear_add.json")


def test_unreadable_inputs_are_refused(tmp_path):
    (tmp_path / "noise.h5").write_bytes(b"not a model")
    for path in (tmp_path / "missing.h5", tmp_path / "noise.h5", FIXTURES / "k3_strided.json", tmp_path):
        with pytest.raises(InputError):
            read_keras(path)


def test_converted_unet_is_a_normal_checkpoint(tmp_path):
    from discnet.inference.predict import load_models

    out = tmp_path / "unet.ckpt"
    done = convert_keras(FIXTURES / "k2_unet_valid_dilated.h5", out)
    assert done.net is not None and done.image_size == 92  # the Keras input side
    net, checkpoint = load_net(out)  # weights_only loading, rebuilt from hyper_parameters["net"]
    assert checkpoint["hyper_parameters"]["input"]["name"] == "stretched"
    x, expected = keras_arrays("k2_unet_valid_dilated")
    disc = torch.softmax(torch.from_numpy(run(net, x)), dim=1)[:, 1:].numpy()  # Keras sigmoid == P(disc)
    np.testing.assert_allclose(disc, expected, rtol=0, atol=1e-4)
    nets, settings = load_models([out])
    assert isinstance(nets[0], UNet) and settings.input.name == "stretched" and settings.image_size == 92


def test_generic_model_is_written_for_load_converted(tmp_path):
    out = tmp_path / "generic.ckpt"
    done = convert_keras(FIXTURES / "k3_upsampling_dilated_bn.keras", out, input_preset="raw")
    assert done.net is None and "not a 3x3 stride-1 Conv2D" in done.reason
    with pytest.raises(InputError, match="does not record its network architecture"):
        load_net(out)
    x, expected = keras_arrays("k3_upsampling_dilated_bn")
    keras_like, checkpoint = load_converted(out, keras_outputs=True)
    np.testing.assert_allclose(run(keras_like, x), expected, rtol=0, atol=1e-4)
    logits, _ = load_converted(out)  # discnet semantics: one-channel sigmoid z -> logits [0, z]
    disc = torch.softmax(torch.from_numpy(run(logits, x)), dim=1)[:, 1:].numpy()
    np.testing.assert_allclose(disc, expected, rtol=0, atol=1e-4)
    assert checkpoint["hyper_parameters"]["input"]["name"] == "raw"


def test_image_size_is_needed_for_a_unet_of_any_input_size(tmp_path):
    source = FIXTURES / "k3_unet_same.keras"
    with pytest.raises(InputError, match="None x None.*pass --image-size"):
        convert_keras(source, tmp_path / "a.ckpt")
    with pytest.raises(InputError, match="multiple of 2"):
        convert_keras(source, tmp_path / "a.ckpt", image_size=31)
    assert not (tmp_path / "a.ckpt").exists()
    assert convert_keras(source, tmp_path / "a.ckpt", image_size=64, input_scale=1.0).input["scale"] == 1.0


def test_cli_convert(tmp_path, capsys):
    out = tmp_path / "m.ckpt"
    assert main(["convert", str(FIXTURES / "k2_unet_same_bn.h5"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "model.net.norm=batch" in printed and f"model.init_from={out}" in printed and out.is_file()
    assert main(["convert", str(FIXTURES / "k2_lambda.h5"), "-o", str(tmp_path / "l.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Lambda" in err and not (tmp_path / "l.ckpt").exists()


def test_fine_tuning_starts_from_the_converted_model(tiny_dataset, tmp_path):
    """train.py model.init_from=converted.ckpt with lr 0: the first validation Dice is the converted
    model's own Dice on the validation volumes."""
    from discnet.data.manifest import load_manifest
    from discnet.data.preprocess import input_config, prepare_volume
    from discnet.evaluation.metrics import dice
    from discnet.inference.probability import disc_probability
    from discnet.io import read_volume
    from discnet.training.run import run_training as train
    from tests.train_helpers import tiny_config

    ckpt = tmp_path / "converted.ckpt"
    done = convert_keras(FIXTURES / "k3_unet_same.keras", ckpt, image_size=32)
    lr0 = ["trainer.max_epochs=1", "+trainer.limit_train_batches=1", "trainer.log_every_n_steps=1", "optim.lr=0"]
    lr0.append("optim.weight_decay=0")
    cfg = tiny_config(tiny_dataset, tmp_path / "ft", *lr0, *done.train_overrides())
    assert cfg.model.net.depth == 1 and cfg.model.init_from == str(ckpt)
    train(cfg)
    first = pd.read_csv(tmp_path / "ft" / "val_scores.csv").iloc[0]
    net, _ = load_net(ckpt)
    table = load_manifest(tiny_dataset)
    scores = {}
    for row in table[(table["split"] == "val") & (table["session"] == 1)].itertuples():
        stack = prepare_volume(
            read_volume(row.image), read_volume(row.label, kind="label"), input_config(cfg.input), 32
        )
        prob = disc_probability([net], stack.images, stack.native_shape)
        scores[row.subject] = dice(prob > 0.5, stack.native_labels)
    assert any(s > 0 for s in scores.values())
    for subject, score in scores.items():
        assert first[subject] == pytest.approx(score, abs=1e-9)

"""Every Hydra config composes and instantiates; experiment presets match the paper's Tables 2 and 3."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from discnet.data.augment_config import augment_config
from discnet.data.preprocess import InputConfig
from discnet.training.segmenter import DiscSegmenter
from tests.paths import REPO

CONF = REPO / "conf"


def options(group: str) -> list[str]:
    return sorted(p.relative_to(CONF / group).with_suffix("").as_posix() for p in (CONF / group).rglob("*.yaml"))


def _compose(overrides, tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(tmp_path)
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        cfg.hydra.runtime.cwd = str(tmp_path)
        del cfg["hydra"]
    return cfg


@pytest.mark.parametrize(
    "group, option",
    [
        (g, o)
        for g in ("data", "input", "augment", "model", "optim", "trainer", "logger", "callbacks", "scale")
        for o in options(g)
    ]
    + [("experiment", o) for o in options("experiment")],
)
def test_every_config_composes_and_instantiates(group, option, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = _compose([f"{group}={option}", "data.manifest=subjects.csv"], tmp_path)
    assert OmegaConf.to_container(cfg, resolve=True)
    InputConfig(**OmegaConf.to_container(cfg.input))
    augment_config(OmegaConf.to_container(cfg.augment))
    context = int(cfg.model.context_slices)
    model = DiscSegmenter(
        net={**OmegaConf.to_container(cfg.model.net), "base_filters": 4},
        optim=dict(cfg.optim),
        loss=OmegaConf.to_container(cfg.model.loss),
        context_slices=context,
    )
    assert model.net.depth == cfg.model.net.depth and model.net.in_channels == 2 * context + 1
    hydra.utils.instantiate(
        cfg.data,
        input=OmegaConf.to_container(cfg.input),
        augment=OmegaConf.to_container(cfg.augment),
        context_slices=context,
    )
    for callback in cfg.callbacks.values():
        hydra.utils.instantiate(callback)
    if group == "trainer" and option in ("cpu", "smoke"):
        hydra.utils.instantiate(cfg.trainer, logger=False)
    for logger in cfg.logger.values():
        assert hydra.utils.get_class(logger._target_)


ROUND1 = {  # Table 2: model -> (parameters, input, batch size)
    1: ("unet100", "raw", 6),
    2: ("unet100", "deleted_blanks", 6),
    3: ("unet100", "stretched", 6),
    4: ("unet100", "augmented", 6),
    5: ("unet75", "deleted_blanks", 8),
    6: ("unet75", "stretched", 8),
    7: ("unet75", "augmented", 8),
    8: ("unet50", "deleted_blanks", 14),
    9: ("unet50", "stretched", 14),
    10: ("unet50", "augmented", 14),
}


@pytest.mark.parametrize("number", sorted(ROUND1))
def test_round1_presets(number, tmp_path):
    cfg = _compose([f"experiment=round1/model{number:02d}"], tmp_path)
    assert (cfg.model.name, cfg.input.name, cfg.model.batch_size) == ROUND1[number]
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2, cfg.optim.weight_decay) == (1e-3, 0.95, 0.999, 0.05)
    assert cfg.model.net.dropout == 0.2 and cfg.trainer.max_epochs == 2000 and cfg.image_size == 512
    assert cfg.round == 1 and cfg.version == f"r1-model{number:02d}"


@pytest.mark.parametrize(
    "experiment", ["+experiment/round1=model01", "+experiment/round1=model10", "experiment=round2/dropout"]
)
def test_the_scale_group_sets_the_rounds_size_alone(experiment, tmp_path):
    paper = _compose([experiment], tmp_path)
    cpu = _compose([experiment, "scale=cpu"], tmp_path)
    size = lambda c: (c.image_size, c.model.net.reference_filters, c.trainer.max_epochs)  # noqa: E731
    assert size(paper) == (512, 64, 2000) and size(cpu) == (64, 8, 10)
    paper, cpu = (OmegaConf.to_container(c) for c in (paper, cpu))
    for cfg in (paper, cpu):
        del cfg["image_size"], cfg["trainer"]["max_epochs"], cfg["model"]["net"]["reference_filters"]
    assert paper == cpu, "scale changes nothing but the size"


def test_model_sizes_differ_only_in_their_share_and_batch(tmp_path):
    models = {
        m: OmegaConf.to_container(_compose([f"model={m}"], tmp_path).model) for m in ("unet100", "unet75", "unet50")
    }
    assert {m: (c["net"]["params"], c["batch_size"]) for m, c in models.items()} == {
        "unet100": (1.0, 6), "unet75": (0.75, 8), "unet50": (0.5, 14)
    }  # fmt: skip
    for c in models.values():
        del c["name"], c["net"]["params"], c["batch_size"]
    assert models["unet100"] == models["unet75"] == models["unet50"]


ROUND2 = {  # Table 3: version -> (lr, beta1, dropout, weight decay, norm, dilation)
    "baseline": (1e-3, 0.95, 0.2, 0.05, "none", 1),
    "batchnorm": (1e-3, 0.95, 0.2, 0.05, "batch", 1),
    "dropout": (5e-4, 0.90, 0.8, 0.05, "none", 1),
    "dilated": (1e-3, 0.95, 0.2, 0.05, "none", 2),
}


@pytest.mark.parametrize("version", sorted(ROUND2))
@pytest.mark.parametrize("syntax", ["experiment=round2/{}", "+experiment/round2={}"])
def test_round2_presets(version, syntax, tmp_path):
    cfg = _compose([syntax.format(version)], tmp_path)
    got = (
        cfg.optim.lr,
        cfg.optim.beta1,
        cfg.model.net.dropout,
        cfg.optim.weight_decay,
        cfg.model.net.norm,
        cfg.model.net.dilation,
    )
    assert got == ROUND2[version]
    assert (cfg.model.name, cfg.input.name, cfg.round, cfg.version) == ("unet75", "stretched", 2, f"r2-{version}")


def test_lumbar_t2_data_reads_the_shared_folder_by_a_root_value(tmp_path, lumbar_dir):
    project = REPO
    cfg = _compose(["experiment=lumbar_t2", "data.val_subjects=[sub20]"], tmp_path)
    with open_dict(cfg):
        cfg.paths.root_dir = str(project)
    dm = hydra.utils.instantiate(cfg.data, input=OmegaConf.to_container(cfg.input))
    assert dm.manifest.resolve() == (lumbar_dir / "subjects.csv").resolve()
    assert dm.val_subjects == ["sub20"] and cfg.image_size % 2**cfg.model.net.depth == 0
    own = _compose(["data=lumbar_t2", f"data.root={tmp_path}"], tmp_path)
    assert hydra.utils.instantiate(own.data).manifest == tmp_path / "subjects.csv"


@pytest.mark.parametrize(("trainer", "expected"), [("cpu", False), ("gpu", True), ("ddp", True)])
def test_channels_last_is_on_for_gpu_trainers(trainer, expected, tmp_path):
    from discnet.training.run import use_channels_last

    cfg = _compose([f"trainer={trainer}"], tmp_path)
    assert cfg.trainer.precision == ("bf16-mixed" if expected else "32-true")
    assert use_channels_last(cfg) is expected
    assert use_channels_last(_compose([f"trainer={trainer}", "model.channels_last=false"], tmp_path)) is False


@pytest.mark.parametrize(
    "preset", [f"experiment=round1/model{n:02d}" for n in ROUND1] + [f"experiment=round2/{v}" for v in ROUND2]
)
def test_paper_presets_keep_the_papers_training(preset, tmp_path):
    cfg = _compose([preset], tmp_path)
    assert cfg.augment.name == "none" and not augment_config(OmegaConf.to_container(cfg.augment)).active
    assert cfg.model.context_slices == 0 and cfg.model.loss.include_background is True
    assert (cfg.optim.algorithm, cfg.optim.schedule, cfg.optim.warmup_epochs) == ("adamw", "constant", 0)
    assert cfg.input.fit == "stretch"


@pytest.mark.parametrize("preset", ["few_scans", "few_scans_quick", "lumbar_t2"])
def test_few_scan_presets_turn_the_few_scan_levers_on(preset, tmp_path):
    cfg = _compose([f"experiment={preset}"], tmp_path)
    quick = preset == "few_scans_quick"  # measured without augmentation and the background's Dice
    assert augment_config(OmegaConf.to_container(cfg.augment)).active is not quick
    assert cfg.model.loss.include_background is not quick
    plain = _compose([f"experiment={preset}", "augment=none"], tmp_path)
    assert not augment_config(OmegaConf.to_container(plain.augment)).active
    assert cfg.model.context_slices == 1
    assert cfg.optim.schedule == "cosine" and cfg.input.fit == "pad" and cfg.model.net.norm == "batch"
    assert cfg.image_size % 2**cfg.model.net.depth == 0


def test_lumbar_t2_trains_1188_steps_on_a_two_scan_fold(tmp_path):
    cfg = _compose(["experiment=lumbar_t2"], tmp_path)
    assert (cfg.trainer.max_epochs, cfg.image_size, cfg.augment.name) == (108, 192, "few_scans")
    assert (cfg.surplus, _compose(["experiment=few_scans"], tmp_path).surplus) == ("anchor", "largest")
    assert (cfg.tta, _compose(["experiment=round1/model01"], tmp_path).tta) == ("flip", "none")


@pytest.mark.parametrize(
    ("option", "algorithm"), [("adam", "adamw"), ("adam_l2", "adam_l2"), ("keras_decay", "keras_decay")]
)
def test_optim_options_read_weight_decay_three_ways(option, algorithm, tmp_path):
    cfg = _compose([f"optim={option}"], tmp_path)
    assert cfg.optim.algorithm == algorithm and cfg.optim.weight_decay == 0.05 and cfg.optim.lr == 1e-3


def test_lumbar_t2_root_does_not_depend_on_the_current_directory(tmp_path, monkeypatch, lumbar_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISCNET_SHARED_DIR", raising=False)
    cfg = _compose(["data=lumbar_t2"], tmp_path)  # paths.root_dir (the current directory) is tmp_path
    assert Path(cfg.data.root).resolve() == lumbar_dir.resolve()
    monkeypatch.setenv("DISCNET_SHARED_DIR", str(tmp_path / "elsewhere"))
    assert _compose(["data=lumbar_t2"], tmp_path).data.root == str(tmp_path / "elsewhere" / "data" / "lumbar-t2")

"""DistributedDataParallel on CPU (gloo): two processes split the validation volumes, and the gathered
per-subject scores still cover every validation subject."""

from __future__ import annotations

import json

import pytest

from tests.train_helpers import TINY
from tests.training.test_sweeps import train


@pytest.mark.slow
def test_ddp_two_processes_gather_every_subject(tiny_dataset, tmp_path):
    out = tmp_path / "ddp"
    result = train(
        f"data.manifest={tiny_dataset}",
        *TINY,
        "trainer=smoke",
        "trainer.accelerator=cpu",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        f"hydra.run.dir={out}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["subjects"]) == {"sub-004", "sub-005"}

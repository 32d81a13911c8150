"""Train a disc segmentation U-Net: ``python train.py [overrides]``; sweeps with ``-m``.

Examples:
    python train.py trainer=smoke
    python train.py -m model=unet75 input=stretched 'seed=range(8)'
    python train.py -m '+experiment/round1=glob(*)' 'seed=range(8)'
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from discnet.train_entry import check_overrides, guarded_run

CONF = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return guarded_run(cfg)


if __name__ == "__main__":
    check_overrides(sys.argv[1:], CONF, "train")
    main()

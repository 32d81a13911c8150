"""Train a disc segmentation U-Net: ``python train.py [overrides]``; sweeps with ``-m``.

An alias of ``discnet train`` (:mod:`discnet.cli.train`), reading the same configs (``conf/``).

Examples:
    python train.py trainer=smoke
    python train.py -m model=unet75 input=stretched 'seed=range(8)'
    python train.py -m '+experiment/round1=glob(*)' 'seed=range(8)'
"""

import sys

from discnet.cli.train import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

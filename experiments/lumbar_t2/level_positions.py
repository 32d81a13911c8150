"""Where each labelled disc of predicted and manual masks lies: label, voxels and its centre in world mm.

Shows when level labelling kept a disc the annotators did not draw (T12-L1 at the top of the field of
view) and dropped a drawn one (L5-S1): the predicted centres then sit one level above the manual ones.
``results/level_positions_sub20.csv``: seed 0 with the default rule and with ``--surplus anchor``, seed 2
(which finds no L5-S1), the 3-seed ensemble with both rules:

    P=work/predict; S=sub20/orphans_removed; E=$P/augmented_bg_x2_ensemble/sub20
    python experiments/lumbar_t2/level_positions.py --truth ../shared/data/lumbar-t2/sub20_discs.nii.gz \
        --pred $P/augmented_bg_x2/$S/sub20_T2w_discs.nii.gz $P/augmented_bg_x2/${S}_anchor/sub20_T2w_discs.nii.gz \
        $P/augmented_bg_x2_seed2/$S/sub20_T2w_discs.nii.gz $E/sub20_T2w_discs.nii.gz \
        $E/orphans_removed_anchor/sub20_T2w_discs.nii.gz -o results/level_positions_sub20.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd


def positions(path: Path, source: str) -> pd.DataFrame:
    """One row per nonzero label of the mask at ``path``: label, voxels, centre (world x, y, z in mm)."""
    image = nib.load(path)
    labels = np.asarray(image.dataobj)
    rows = []
    for label in sorted(set(np.unique(labels).tolist()) - {0}):
        centre = nib.affines.apply_affine(image.affine, np.argwhere(labels == label).mean(axis=0))
        rows.append({"source": source, "label": label, "voxels": int((labels == label).sum()),
                     **dict(zip(("x_mm", "y_mm", "z_mm"), np.round(centre, 1), strict=True))})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--pred", type=Path, nargs="+", required=True)
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    table = pd.concat([positions(args.truth, "manual"), *(positions(p, str(p)) for p in args.pred)])
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# A seconds-long end-to-end check of `discnet predict`'s ensemble uncertainty on small phantoms: two tiny
# U-Nets (seeds 0 and 1, 4 epochs) x test-time flip = 4 members predict a held-out phantom; its discs are
# scored against the truth and the QC flag's hit rate computed. The models are deliberately undertrained:
# this shows the outputs, it does not measure how good the flag is (that is experiments/lumbar_t2's job).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
W=experiments/measurements/work/ensemble
OUT=experiments/measurements/ensemble_demo
rm -rf "$W" && mkdir -p "$W" "$OUT"
$BIN/discnet synth "$W/data" --subjects 6 --seed 3 --size 96 64 --spacing 2.5 2.5 4.0 --slice-count 12 > /dev/null
$BIN/python - "$W/data/subjects.csv" <<'PY'
import sys, pandas as pd
path = sys.argv[1]
table = pd.read_csv(path)
table["split"] = ["train"] * 4 + ["val", "test"]
table.to_csv(path, index=False)
PY
for seed in 0 1; do
  $BIN/python train.py data=manifest data.manifest="$PWD/$W/data/subjects.csv" trainer=cpu logger=csv seed=$seed \
    image_size=64 model.net.base_filters=8 model.net.depth=3 model.batch_size=2 optim.lr=0.003 trainer.max_epochs=4 \
    paths.cache_dir="$PWD/$W/cache" hydra.run.dir="$W/seed$seed" ~callbacks.progress > /dev/null 2>&1
done
TEST=$(awk -F, 'NR > 1 && $NF == "test" {print $3}' "$W/data/subjects.csv")
$BIN/discnet predict --ckpt "$W/seed0/checkpoints/best.ckpt" --ckpt "$W/seed1/checkpoints/best.ckpt" \
  "$W/data/$TEST" -o "$W/pred" --tta flip --uncertainty entropy --levels "$W/data/levels.csv" | tee "$OUT/predict_stdout.txt"
$BIN/discnet evaluate --pred "$W/pred" --truth "$W/data/$(awk -F, 'NR > 1 && $NF == "test" {print $4}' "$W/data/subjects.csv")" \
  --levels "$W/data/levels.csv" -o "$OUT/metrics.csv" > /dev/null
cp "$W/pred/uncertainty.csv" "$W/pred/members.csv" "$W/pred/measurements_wide.csv" "$OUT/"
$BIN/python - "$OUT" <<'PY'
import sys, pandas as pd
from discnet.uncertainty import flag_hit_rate
out = sys.argv[1]
rates = flag_hit_rate(pd.read_csv(f"{out}/uncertainty.csv", keep_default_na=False), pd.read_csv(f"{out}/metrics.csv"))
rates.to_csv(f"{out}/flag_hit_rate.csv", index=False)
print(rates.to_string(index=False))
PY

#!/usr/bin/env bash
# Disc volume agreement on real data: (1) discnet volumes of the ten ivd-volumes label maps against the
# volumes published with them; (2) predicted against manual volumes of the three held-out lumbar T2
# subjects of the leave-one-out folds (stretched input, orphan removal), from the committed
# experiments/lumbar_t2/results/loo_metrics.csv.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
IVD=../shared/data/ivd-volumes
OUT=experiments/measurements
mkdir -p "$OUT/ivd_volumes" "$OUT/lumbar_t2_loo"
$BIN/discnet volumes "$IVD" --levels "$IVD/levels.csv" -o "$OUT/ivd_volumes/measured.csv"
$BIN/discnet agreement --volumes "$OUT/ivd_volumes/measured.csv" "$IVD/reference_volumes_cm3.csv" \
  -o "$OUT/ivd_volumes/agreement.csv" | tee "$OUT/ivd_volumes/stdout.txt"
$BIN/python - "$OUT/lumbar_t2_loo" <<'PY'
import sys, pandas as pd
out = sys.argv[1]
m = pd.read_csv("experiments/lumbar_t2/results/loo_metrics.csv")
m = m[(m["level"] != "all") & (m["input"] == "stretched") & m["orphan_removal"]]
for column, name in (("pred_mm3", "predicted"), ("true_mm3", "manual")):
    m[["subject", "level"]].assign(volume_mm3=m[column]).to_csv(f"{out}/{name}.csv", index=False)
PY
$BIN/discnet agreement --volumes "$OUT/lumbar_t2_loo/predicted.csv" "$OUT/lumbar_t2_loo/manual.csv" \
  -o "$OUT/lumbar_t2_loo/agreement.csv" | tee "$OUT/lumbar_t2_loo/stdout.txt"

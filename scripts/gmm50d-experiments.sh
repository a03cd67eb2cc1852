#!/usr/bin/env bash
# Reproduces docs/METHOD.md §5.1 (docs/RESULTS.md): gmm50d with jarzynski, pcd and cd for
# seeds 0, 1, 2, then the table and the comparison plots.
#   scripts/gmm50d-experiments.sh [OUTDIR]      (default runs/gmm50d-exp)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gmm50d-exp}
make build >/dev/null
go build -tags openblas -o bin/ ./cmd/jarzyn-report
for m in jarzynski pcd cd; do for s in 0 1 2; do
  d=$OUT/${m}_s$s
  [ -f "$d/summary.json" ] && continue
  rm -rf "$d"
  bin/jarzyn-train --config configs/gmm50d.yaml --out "$d" --set seed=$s --set method=$m
done; done
scripts/summarize-runs.py "$OUT"/*_s*
for s in 0 1 2; do
  bin/jarzyn-report --column mass_0 --target 0.25 --title "gmm50d seed $s: model mass of the -10 mode" --ylabel mass \
    --out "$OUT/mass_s$s.png" jarzynski="$OUT/jarzynski_s$s" pcd="$OUT/pcd_s$s" cd="$OUT/cd_s$s"
  bin/jarzyn-report --column exact_kl --title "gmm50d seed $s: exact KL" --ylabel nats \
    --out "$OUT/kl_s$s.png" jarzynski="$OUT/jarzynski_s$s" pcd="$OUT/pcd_s$s" cd="$OUT/cd_s$s"
done

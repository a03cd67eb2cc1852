#!/usr/bin/env bash
# Go vs PyTorch benchmarks in one go. Raw outputs go to bench/out/ (gitignored), the Markdown report to
# stdout and bench/out/report.md.
#
#   bash bench/run.sh            # full run (several minutes on the 2-core machine)
#   QUICK=1 bash bench/run.sh    # short timings, for trying the script out
#
# Environment: PY (default /usr/bin/python3: Debian's python3-torch), GO (default go),
# TORCH_CONFIGS (thread configs for the PyTorch sweep, default "1:2,2:2,2:2:passive"), ULA_ROUNDS (sampler
# rounds, Go and PyTorch alternating, default 3),
# SKIP_GO=1 / SKIP_PY=1 to skip one side.
# A Go benchmark that does not exist (yet) shows as "n/a"; the script never stops on a failing step.
set -u
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
PY=${PY:-/usr/bin/python3}
GO=${GO:-go}
CONFIGS=${TORCH_CONFIGS:-1:2,2:2,2:2:passive}
if [ "${QUICK:-0}" = 1 ]; then
  TI_ARGS=(--min-iters 5 --min-time 0.5); ULA_ARGS=(--min-repeats 3 --min-time 0.5); SG_ARGS=(--repeats 3)
  CONV_ARGS=(--min-iters 3 --min-time 0.5)
  GO_TRAIN_TIME=5x; GO_ULA_TIME=0.5s; ULA_ROUNDS=${ULA_ROUNDS:-1}
else
  TI_ARGS=(); ULA_ARGS=(); SG_ARGS=(); CONV_ARGS=()
  GO_TRAIN_TIME=20x; GO_ULA_TIME=3s; ULA_ROUNDS=${ULA_ROUNDS:-3}
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "go: $($GO version 2>/dev/null || echo n/a)"
  echo "torch: $($PY -c 'import torch; print(torch.__version__)' 2>/dev/null || echo n/a), numpy: $($PY -c 'import numpy; print(numpy.__version__)' 2>/dev/null || echo n/a)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo n/a)"
} > "$OUT/env.txt"

step() { echo ">>> $*" >&2; }

# OpenBLAS (which numpy and PyTorch use for their GEMMs) falls back to its generic "Prescott" kernels on CPUs
# its version does not know; jarzyn re-selects the right kernels at start (internal/blas). Give the Python
# side the same kernels, so that the comparison is against its best.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell
  fi
fi
echo "OPENBLAS_CORETYPE: ${OPENBLAS_CORETYPE:-unset}" >> "$OUT/env.txt"

# The sgemm ceiling is measured before the Go benchmarks and again with the PyTorch ones: the machine's speed
# drifts over minutes, and the report quotes each sampler GFLOP/s against the best ceiling of the run.
if [ "${SKIP_PY:-0}" != 1 ]; then
  step "sgemm ceiling (start)"
  OPENBLAS_NUM_THREADS=2 $PY bench/sgemm.py "${SG_ARGS[@]}" > "$OUT/sgemm_start.jsonl" 2> "$OUT/sgemm.log" \
    || echo "(sgemm failed: see $OUT/sgemm.log)" >&2
fi

if [ "${SKIP_GO:-0}" != 1 ]; then
  # gorgonia runs on OpenBLAS (-tags openblas); like PyTorch it is measured at its best thread setting:
  # OPENBLAS_NUM_THREADS 1 and 2 (Go's own goroutines use both cores either way), the best per case is kept.
  for t in 1 2; do
    step "go test -tags openblas -bench BenchmarkTrainIteration ./train/ (OPENBLAS_NUM_THREADS=$t)"
    OPENBLAS_NUM_THREADS=$t $GO test -tags openblas -run '^$' -bench 'BenchmarkTrainIteration' -benchtime "$GO_TRAIN_TIME" ./train/ \
      > "$OUT/go_train_t$t.txt" 2>&1 || echo "(go train benchmarks failed: see $OUT/go_train_t$t.txt)" >&2
    step "go test -tags openblas -bench BenchmarkULA ./train/ (gorgonia sampler loop, OPENBLAS_NUM_THREADS=$t)"
    OPENBLAS_NUM_THREADS=$t $GO test -tags openblas -run '^$' -bench 'BenchmarkULA' -benchtime "$GO_TRAIN_TIME" ./train/ \
      > "$OUT/go_gula_t$t.txt" 2>&1 || echo "(gorgonia ULA benchmarks failed: see $OUT/go_gula_t$t.txt)" >&2
  done
fi

# The conv family (docs/METHOD.md §5.2–5.3): energy + ∇ₓU at batch 256 and one training iteration of the MNIST
# net, the CIFAR net's energy + ∇ₓU; Go and PyTorch back to back.
if [ "${SKIP_GO:-0}" != 1 ]; then
  for t in 1 2; do
    step "go test -tags openblas -bench 'BenchmarkConv' ./train/ (conv family, OPENBLAS_NUM_THREADS=$t)"
    OPENBLAS_NUM_THREADS=$t $GO test -tags openblas -run '^$' -bench 'BenchmarkConv(EnergyGrad|TrainIteration)/mnist' \
      -benchtime "$GO_TRAIN_TIME" ./train/ > "$OUT/go_conv_t$t.txt" 2>&1 || echo "(go conv benchmarks failed: see $OUT/go_conv_t$t.txt)" >&2
    OPENBLAS_NUM_THREADS=$t $GO test -tags openblas -run '^$' -bench 'BenchmarkConvEnergyGrad/cifar' -benchtime 3x ./train/ \
      >> "$OUT/go_conv_t$t.txt" 2>&1 || echo "(go conv benchmarks failed: see $OUT/go_conv_t$t.txt)" >&2
  done
  step "go test -bench 'BenchmarkSampleULAConv' ./serve/ (the sampler on the MNIST conv net)"
  $GO test -run '^$' -bench 'BenchmarkSampleULAConv' -benchtime "$GO_ULA_TIME" ./serve/ > "$OUT/go_conv_ula.txt" 2>&1 \
    || echo "(go conv sampler benchmark failed: see $OUT/go_conv_ula.txt)" >&2
fi
if [ "${SKIP_PY:-0}" != 1 ]; then
  step "PyTorch conv family (threads 1 and 2)"
  $PY bench/torch_conv.py "${CONV_ARGS[@]}" > "$OUT/torch_conv.jsonl" 2> "$OUT/torch_conv.log" \
    || echo "(torch_conv failed: see $OUT/torch_conv.log)" >&2
fi

if [ "${SKIP_PY:-0}" != 1 ]; then
  step "sgemm ceiling (with PyTorch)"
  OPENBLAS_NUM_THREADS=2 $PY bench/sgemm.py "${SG_ARGS[@]}" > "$OUT/sgemm.jsonl" 2>> "$OUT/sgemm.log" \
    || echo "(sgemm failed: see $OUT/sgemm.log)" >&2
  step "PyTorch training iteration (thread sweep $CONFIGS)"
  OPENBLAS_NUM_THREADS=2 $PY bench/torch_train_iter.py --configs "$CONFIGS" "${TI_ARGS[@]}" \
    > "$OUT/torch_train_iter.jsonl" 2> "$OUT/torch_train_iter.log" \
    || echo "(torch_train_iter failed: see $OUT/torch_train_iter.log)" >&2
fi

# The sampler comparison alternates Go and PyTorch ULA_ROUNDS times (default 3), so that both sides see the
# same drift of the machine; the report takes per-round ratios and their median.
rm -f "$OUT"/go_ula_r*.txt "$OUT"/torch_ula_r*.jsonl
for r in $(seq 1 "$ULA_ROUNDS"); do
  if [ "${SKIP_GO:-0}" != 1 ]; then
    step "round $r/$ULA_ROUNDS: go test -bench 'BenchmarkSampleULA(Latent)?$' ./serve/"
    $GO test -run '^$' -bench 'BenchmarkSampleULA(Latent)?$' -benchtime "$GO_ULA_TIME" ./serve/ > "$OUT/go_ula_r$r.txt" 2>&1 \
      || echo "(go ULA benchmarks failed or missing: see $OUT/go_ula_r$r.txt)" >&2
  fi
  if [ "${SKIP_PY:-0}" != 1 ]; then
    step "round $r/$ULA_ROUNDS: PyTorch ULA throughput (thread sweep $CONFIGS)"
    OPENBLAS_NUM_THREADS=2 $PY bench/torch_ula.py --configs "$CONFIGS" "${ULA_ARGS[@]}" \
      > "$OUT/torch_ula_r$r.jsonl" 2>> "$OUT/torch_ula.log" \
      || echo "(torch_ula failed: see $OUT/torch_ula.log)" >&2
  fi
done

echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
$PY bench/report.py "$OUT" | tee "$OUT/report.md"

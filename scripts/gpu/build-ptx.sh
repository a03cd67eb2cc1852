#!/usr/bin/env bash
# Compile gorgonia's CUDA kernels ("cuda modules/src/*.cu" in the
# gorgonia.org/gorgonia module) to PTX, as gorgonia's cudagen would, into OUT
# (default bin/cuda-ptx). A -tags cuda binary loads them at start from
# $JARZYN_CUDA_PTX or cuda-ptx next to the executable (train/device_cuda.go).
#
#   scripts/gpu/build-ptx.sh [OUT] [ARCH]
#
# ARCH is a virtual architecture (default compute_70): PTX is compiled by the
# driver for the GPU it runs on, so older PTX runs on newer GPUs (an H100 is
# sm_90). Needs nvcc of any CUDA ≥ 11 toolkit (Debian: nvidia-cuda-toolkit).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bin/cuda-ptx}
arch=${2:-${CUDA_PTX_ARCH:-compute_70}}
nvcc=${NVCC:-nvcc}
if [ -n "${GORGONIA_DIR:-}" ]; then
  src="$GORGONIA_DIR/cuda modules/src"
else
  src="$(go list -m -f '{{.Dir}}' gorgonia.org/gorgonia)/cuda modules/src"
fi
[ -d "$src" ] || { echo "build-ptx: no gorgonia kernel sources at $src" >&2; exit 1; }
command -v "$nvcc" >/dev/null || { echo "build-ptx: nvcc not found (apt-get install nvidia-cuda-toolkit from Debian non-free, or set NVCC)" >&2; exit 1; }
mkdir -p "$out"
for cu in "$src"/*.cu; do
  name=$(basename "$cu" .cu)
  # the flags cudagen uses (gorgonia cmd/cudagen): IEEE-exact arithmetic
  "$nvcc" -ptx -arch="$arch" -Xptxas --allow-expensive-optimizations -fmad=false -ftz=false \
    -prec-div=true -prec-sqrt=true -o "$out/$name.ptx" "$cu"
  echo "build-ptx: $out/$name.ptx ($(grep -c '\.entry' "$out/$name.ptx") kernels, $arch)"
done

#!/usr/bin/env bash
# Link-time stand-ins for the CUDA 13 / cuDNN 9 libraries, so that a -tags
# cuda binary links on a build machine without them (Debian ships CUDA 11.8 and
# no cuDNN) and asks at run time for the CUDA 13 / cuDNN 9 libraries:
#   libcudnn.so  (SONAME libcudnn.so.9)   every function in our cuDNN 9 declarations
#   libcublas.so (SONAME libcublas.so.13) every cublas* function Debian's libcublas exports
# The stubs are never loaded: at run time the dynamic loader finds the real
# libcudnn.so.9 and libcublas.so.13 (e.g. LD_LIBRARY_PATH to the lib folders
# of the pip nvidia-*-cu13 packages on the GPU machine). libcuda.so.1 (the
# driver API) links against the system's libcuda (Debian's libcuda1 or the
# CUDA stubs).
#
#   scripts/gpu/mkstubs.sh [OUT]     (default .build/cuda-stubs)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.build/cuda-stubs}
cc=${CC:-gcc}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

grep -ohE '\bcudnn[A-Za-z0-9_]+\(' internal/cudashim/include/jarzyn_cudnn9_funcs.h | tr -d '(' | sort -u >"$tmp/cudnn.syms"
awk '{printf "void %s(void) {}\n", $1}' "$tmp/cudnn.syms" >"$tmp/cudnn.c"
"$cc" -shared -fPIC -Wl,-soname,libcudnn.so.9 -o "$out/libcudnn.so" "$tmp/cudnn.c"
echo "mkstubs: $out/libcudnn.so (libcudnn.so.9, $(wc -l <"$tmp/cudnn.syms") functions)"

cublas=${CUBLAS_LIB:-}
if [ -z "$cublas" ]; then
  for c in /usr/lib/x86_64-linux-gnu/libcublas.so /usr/local/cuda/lib64/libcublas.so; do
    [ -e "$c" ] && { cublas=$c; break; }
  done
fi
if [ -n "$cublas" ]; then
  nm -D --defined-only "$cublas" | awk '$2 == "T" && $3 ~ /^cublas/ {sub(/@.*/, "", $3); print $3}' | sort -u >"$tmp/cublas.syms"
else
  # no cuBLAS on this machine: the functions gorgonia.org/cu/blas calls, by name (v2 API)
  dir=$(go list -m -f '{{.Dir}}' gorgonia.org/cu)/blas
  grep -ohE '\bC\.cublas[A-Za-z0-9_]+' "$dir"/*.go | sed 's/^C\.//' | sort -u >"$tmp/cublas.raw"
  { cat "$tmp/cublas.raw"; sed 's/$/_v2/' "$tmp/cublas.raw"; } | sort -u >"$tmp/cublas.syms"
fi
awk '{printf "void %s(void) {}\n", $1}' "$tmp/cublas.syms" >"$tmp/cublas.c"
"$cc" -shared -fPIC -Wl,-soname,libcublas.so.13 -o "$out/libcublas.so" "$tmp/cublas.c"
echo "mkstubs: $out/libcublas.so (libcublas.so.13, $(wc -l <"$tmp/cublas.syms") functions, from ${cublas:-cu/blas sources})"

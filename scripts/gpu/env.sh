# Source this to build with -tags cuda: the project's cuDNN header shim first
# on the include path and the link-time stubs first on the library path.
#   . scripts/gpu/env.sh && go build -tags cuda ./cmd/jarzyn-train
# Set JARZYN_SYSTEM_CUDNN=1 (and CUDNN_INCLUDE) to compile against the real
# cuDNN headers instead of the project's own declarations.
_jz_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/../.." && pwd)
_jz_inc="-I$_jz_root/internal/cudashim/include"
if [ -n "${JARZYN_SYSTEM_CUDNN:-}" ]; then
  _jz_inc="$_jz_inc -DJARZYN_SYSTEM_CUDNN ${CUDNN_INCLUDE:+-I$CUDNN_INCLUDE}"
fi
export CGO_ENABLED=1
export CGO_CFLAGS="$_jz_inc ${CGO_CFLAGS_EXTRA:--O2 -g}"
export CGO_LDFLAGS="-L${JARZYN_CUDA_STUBS:-$_jz_root/.build/cuda-stubs} ${CGO_LDFLAGS_EXTRA:--O2 -g}"
unset _jz_root _jz_inc

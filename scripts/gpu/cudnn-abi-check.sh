#!/usr/bin/env bash
# Check the project's cuDNN 9 declarations (internal/cudashim/include) against
# the real cuDNN headers, where both gcc and those headers exist (the pip
# package nvidia-cudnn-cu13 ships them under nvidia/cudnn/include):
#   1. every prototype in jarzyn_cudnn9_funcs.h, compiled after the real
#      cudnn.h: gcc rejects any that differs from cuDNN's ("conflicting types");
#   2. every enumerator in jarzyn_cudnn9_types.h: its value printed by a program
#      built against our header and by one built against the real header.
#
#   scripts/gpu/cudnn-abi-check.sh CUDNN_INCLUDE [CUDA_INCLUDE]
# Exit 0: all equal; 1: a difference (listed); 2: cannot run here.
set -uo pipefail
cd "$(dirname "$0")/../.."
real=${1:-}
cuda_inc=${2:-}
shim=internal/cudashim/include
cc=${CC:-gcc}
command -v "$cc" >/dev/null || { echo "cudnn-abi-check: no C compiler" >&2; exit 2; }
[ -n "$real" ] && [ -f "$real/cudnn.h" ] || { echo "cudnn-abi-check: no cudnn.h in '${real}'" >&2; exit 2; }
if [ -z "$cuda_inc" ]; then
  for d in "$(python3 -c 'import nvidia.cuda_runtime as m, os; print(os.path.join(list(m.__path__)[0], "include"))' 2>/dev/null)" \
    /usr/local/cuda/include /usr/include; do
    [ -n "$d" ] && [ -f "$d/cuda_runtime_api.h" ] && { cuda_inc=$d; break; }
  done
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0

# 1. prototypes
printf '#include <cudnn.h>\n#include "%s/jarzyn_cudnn9_funcs.h"\n' "$PWD/$shim" >"$tmp/protos.c"
if "$cc" -fsyntax-only -I"$real" ${cuda_inc:+-I"$cuda_inc"} "$tmp/protos.c" 2>"$tmp/protos.err"; then
  echo "cudnn-abi-check: $(grep -c '^JZ \|^size_t' "$shim/jarzyn_cudnn9_funcs.h") prototypes match $real/cudnn.h"
else
  echo "cudnn-abi-check: prototypes differ:" && grep -E 'error|note' "$tmp/protos.err" | head -40
  rc=1
fi

# 2. enumerators
grep -oE '\bCUDNN_[A-Za-z0-9_]+[[:space:]]*=' "$shim/jarzyn_cudnn9_types.h" | tr -d ' =' | sort -u >"$tmp/names"
{
  echo '#include <stdio.h>'
  echo '#include <cudnn.h>'
  echo 'int main(void) {'
  awk '{printf "\tprintf(\"%%s %%lld\\n\", \"%s\", (long long)%s);\n", $1, $1}' "$tmp/names"
  echo '	return 0;'
  echo '}'
} >"$tmp/enums.c"
"$cc" -o "$tmp/ours" -I"$shim" "$tmp/enums.c" || { echo "cudnn-abi-check: our header does not compile" >&2; exit 1; }
if "$cc" -o "$tmp/theirs" -I"$real" ${cuda_inc:+-I"$cuda_inc"} "$tmp/enums.c" 2>"$tmp/enums.err"; then
  "$tmp/ours" >"$tmp/ours.txt"; "$tmp/theirs" >"$tmp/theirs.txt"
  if diff "$tmp/ours.txt" "$tmp/theirs.txt" >"$tmp/enums.diff"; then
    echo "cudnn-abi-check: $(wc -l <"$tmp/names") enumerators have cuDNN's values"
  else
    echo "cudnn-abi-check: enumerator values differ (< ours, > cuDNN):"; cat "$tmp/enums.diff"; rc=1
  fi
else
  echo "cudnn-abi-check: enumerators missing from the real header:"; grep error "$tmp/enums.err" | head -20; rc=1
fi
exit $rc

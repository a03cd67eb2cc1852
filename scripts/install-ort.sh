#!/usr/bin/env bash
# Installs the ONNX Runtime CPU shared library (1.30.0) into a project-local
# folder from the npm package onnxruntime-node@1.30.0. `npm pack` downloads the
# tarball without running any install script; the tarball's sha256 is pinned.
#
#   scripts/install-ort.sh [DEST]     (default: .deps/onnxruntime next to this repo's go.mod)
set -euo pipefail
VERSION=1.30.0
SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$ROOT/.deps/onnxruntime}
LIB=$DEST/libonnxruntime.so.1
if [ -f "$LIB" ] && [ -f "$DEST/VERSION" ] && [ "$(cat "$DEST/VERSION")" = "$VERSION" ]; then
  echo "install-ort: ONNX Runtime $VERSION already at $LIB"
  exit 0
fi
command -v npm >/dev/null || { echo "install-ort: npm is required (apt-get install npm)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "install-ort: fetching onnxruntime-node@$VERSION with npm pack"
(cd "$TMP" && npm pack --silent "onnxruntime-node@$VERSION" >/dev/null)
TGZ=$TMP/onnxruntime-node-$VERSION.tgz
GOT=$(sha256sum "$TGZ" | cut -d' ' -f1)
if [ "$GOT" != "$SHA256" ]; then
  echo "install-ort: sha256 mismatch for $TGZ: got $GOT, want $SHA256" >&2
  exit 1
fi
tar -xzf "$TGZ" -C "$TMP" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
mkdir -p "$DEST"
install -m 0644 "$TMP/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$LIB.tmp"
mv "$LIB.tmp" "$LIB"
echo "$VERSION" > "$DEST/VERSION"
echo "install-ort: installed ONNX Runtime $VERSION at $LIB"

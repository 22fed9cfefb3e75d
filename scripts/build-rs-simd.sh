#!/bin/sh
# Assembles src/storage/codec/rs-simd.wat into src/storage/codec/rs-simd.wasm (committed, loaded at run time by
# src/storage/codec/rs-kernels.ts). Needs wat2wasm from WABT: taken from PATH (Debian: apt-get install wabt),
# else from the npm package `wabt`, installed on demand outside the work tree in $WABT_DIR.
set -eu
cd "$(dirname "$0")/.."
SRC=src/storage/codec/rs-simd.wat
OUT=src/storage/codec/rs-simd.wasm
WABT_DIR=${WABT_DIR:-${TMPDIR:-/tmp}/nodus-wabt}
WABT_VERSION=1.0.39

if command -v wat2wasm >/dev/null 2>&1; then
  WAT2WASM=wat2wasm
else
  if [ ! -x "$WABT_DIR/node_modules/wabt/bin/wat2wasm" ]; then
    mkdir -p "$WABT_DIR"
    (cd "$WABT_DIR" && npm install --no-save --no-audit --no-fund "wabt@$WABT_VERSION" >/dev/null)
  fi
  WAT2WASM="$WABT_DIR/node_modules/wabt/bin/wat2wasm"
fi

"$WAT2WASM" --enable-relaxed-simd "$SRC" -o "$OUT"
echo "wrote $OUT ($(wc -c <"$OUT") bytes)" >&2

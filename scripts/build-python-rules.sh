#!/usr/bin/env bash
# Builds every Python example rule (rules-examples-py/<name>/<name_with_underscores>.py) into
# a component at target/guests/python/<name_with_underscores>.wasm, from source:
#   - installs the pinned componentize-py with pip when it is missing or another version;
#   - WASI stubbed out (--stub-wasi): the component imports nothing but the contract;
#   - appends the SDK stamp (custom section `tagbust:sdk`, language=python) the host reads;
#   - refuses a component that imports anything but tagbust:rules/*;
#   - skips a rule whose inputs (wit/, the SDK, the rule's sources, the pin, this script) did
#     not change since its last build. FORCE=1 rebuilds.
# Arguments: rule directory names to build only those (default: all). Prints the paths built.
# TAGBUST_PY_OUT: the output directory (default target/guests/python; tests/build.rs sets it
# when CARGO_TARGET_DIR moves the target directory).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
sdk=guest-sdk/python
out_dir=${TAGBUST_PY_OUT:-target/guests/python}

# The pin lives once, in the SDK's pyproject.toml.
pin=$(sed -n 's/.*"componentize-py==\([^"]*\)".*/\1/p' "$sdk/pyproject.toml")
[[ -n $pin ]] || { echo "error: no componentize-py pin in $sdk/pyproject.toml" >&2; exit 1; }
if [[ "$(componentize-py --version 2>/dev/null || true)" != "componentize-py $pin" ]]; then
  echo "installing componentize-py==$pin" >&2
  # Debian's own Python refuses pip installs outside a virtualenv (PEP 668) unless told.
  "$python" -m pip install --quiet --disable-pip-version-check "componentize-py==$pin" ||
    "$python" -m pip install --quiet --disable-pip-version-check --break-system-packages \
      "componentize-py==$pin"
fi

stamp=$(cd "$sdk" && "$python" -c 'import tagbust_guest as t; print(t.stamp_text())')
mkdir -p "$out_dir"

if (($#)); then dirs=("$@"); else
  dirs=()
  for d in rules-examples-py/*/; do dirs+=("$(basename "$d")"); done
fi

for name in "${dirs[@]}"; do
  src=rules-examples-py/$name
  module=${name//-/_}
  [[ -f $src/$module.py ]] || { echo "error: $src/$module.py is missing" >&2; exit 1; }
  wasm=$out_dir/$module.wasm
  inputs=$(
    {
      echo "componentize-py==$pin $stamp"
      find wit "$sdk/tagbust_guest" "$src" \( -name '*.py' -o -name '*.wit' \) \
        -not -path '*/tests/*' -not -path '*/__pycache__/*'
      echo scripts/build-python-rules.sh  # by its path from the root, however invoked
    } | sort | while read -r f; do
      if [[ -f $f ]]; then sha256sum "$f"; else echo "$f"; fi
    done | sha256sum | cut -d' ' -f1
  )
  if [[ ${FORCE:-0} != 1 && -f $wasm && "$(cat "$wasm.inputs" 2>/dev/null)" == "$inputs" ]]; then
    echo "$wasm (up to date)" >&2
    echo "$wasm"
    continue
  fi

  # A staging directory holding exactly what goes in: the rule's sources (not its tests), the
  # SDK package, and the entry module componentize-py starts from (importing the rule
  # registers it with @export_rule; `Rule` is the name componentize-py looks up for the
  # exported interface). VIRTUAL_ENV names an empty environment, so componentize-py does not
  # fall back to this machine's site-packages (its listing would end up in the snapshot).
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  mkdir -p "$build/app" "$build/env/lib/python/site-packages"
  (cd "$src" && find . -name '*.py' -not -path './tests/*' -not -path '*/__pycache__/*' \
      -exec cp --parents {} "$build/app/" \;)
  mkdir -p "$build/app/tagbust_guest"
  cp "$sdk"/tagbust_guest/*.py "$build/app/tagbust_guest/"
  entry=tagbust_entry_$module
  cat >"$build/app/$entry.py" <<PY
import $module  # noqa: F401  (registers the rule)
from tagbust_guest._export import component_export

Rule = component_export()
PY
  start=$(date +%s%N)
  (cd "$build" && VIRTUAL_ENV="$build/env" componentize-py -q -d "$root/wit" \
      -w rule-component componentize --stub-wasi -p "$build/app" "$entry" -o "$build/out.wasm")
  "$python" "$sdk/tools/component.py" stamp "$build/out.wasm" "$stamp"
  bad=$("$python" "$sdk/tools/component.py" imports "$build/out.wasm" | grep -v '^tagbust:rules/' || true)
  if [[ -n $bad ]]; then
    echo "error: $name imports more than the contract:" >&2
    echo "$bad" >&2
    exit 1
  fi
  mv "$build/out.wasm" "$wasm"
  echo "$inputs" >"$wasm.inputs"
  rm -rf "$build"
  trap - EXIT
  ms=$((($(date +%s%N) - start) / 1000000))
  echo "built $wasm: $(stat -c %s "$wasm") bytes in $((ms / 1000)).$((ms % 1000 / 100)) s" >&2
  echo "$wasm"
done

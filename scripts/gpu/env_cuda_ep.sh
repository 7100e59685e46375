# Source me on the lent GPU machine, after scripts/gpu/env.sh, in the shell (or subshell) that
# runs onnxruntime-genai on the CUDA EP:
#   ( source scripts/gpu/env.sh; source scripts/gpu/env_cuda_ep.sh && python3 scripts/gpu/genai_check.py DIR )
# Unpacks .dev/cudaep/cudaep.tar.xz.part-* (scripts/gpu/build_cuda_ep.sh; every piece must have
# been carried) into $CUDAEP_SITE, puts it first on PYTHONPATH (its onnxruntime and
# onnxruntime_genai shadow the build environment's) and the machine's CUDA 13 libraries from
# torch's nvidia-* wheels on LD_LIBRARY_PATH. Returns 1 when a piece or a library is missing.
CUDAEP_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CUDAEP_SITE=${CUDAEP_SITE:-/tmp/site-cudaep}
if [ ! -f "$CUDAEP_SITE/.complete" ]; then
    mkdir -p "$CUDAEP_SITE"
    cat "$CUDAEP_REPO"/.dev/cudaep/cudaep.tar.xz.part-* | xz -dc | tar -xf - -C "$CUDAEP_SITE" \
        && touch "$CUDAEP_SITE/.complete"
fi
if [ -f "$CUDAEP_SITE/.complete" ]; then
    export PYTHONPATH="$CUDAEP_SITE${PYTHONPATH:+:$PYTHONPATH}"
    # the folders holding libcublas.so.13, libcudart.so.13, libcufft.so.12, libcurand.so.10
    CUDAEP_LIBS=$(python3 - <<'EOF'
import glob, os, site, sys
want = ["libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13", "libcufft.so.12", "libcurand.so.10"]
roots = [p for p in sys.path if p.endswith("site-packages")] + site.getsitepackages()
dirs = []
for lib in want:
    hits = [h for r in roots for h in glob.glob(os.path.join(r, "nvidia", "**", lib), recursive=True)]
    if not hits:
        sys.exit(f"env_cuda_ep.sh: {lib} not found under nvidia/ in {roots}")
    d = os.path.dirname(hits[0])
    if d not in dirs:
        dirs.append(d)
print(":".join(dirs))
EOF
    ) || return 1
    export LD_LIBRARY_PATH="$CUDAEP_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    echo "env_cuda_ep.sh: could not unpack .dev/cudaep (are all pieces there?)" >&2
    return 1
fi

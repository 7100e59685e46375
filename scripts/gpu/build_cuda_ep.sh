#!/usr/bin/env bash
# Pack the onnxruntime-genai CUDA runtime of constraints/gpu-cuda-ep.txt (onnxruntime-gpu and
# onnxruntime-genai-cuda built for CUDA 13) for the lent GPU machine, in pieces that fit its
# 64 MiB per call: .dev/cudaep/cudaep.tar.xz.part-aa, -ab, ...
# Run here, once:   bash scripts/gpu/build_cuda_ep.sh
# On the machine:   source scripts/gpu/env_cuda_ep.sh   (after every piece has been carried)
# The CUDA libraries themselves (cublas, cudart, curand, cufft 13) are not packed: the
# machine's torch 2.11+cu130 brings them as nvidia-* wheels; env_cuda_ep.sh finds them.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/gpu/pack_lib.sh
mapfile -t PINS < <(pins constraints/gpu-cuda-ep.txt)
python3 -m pip download -q --no-deps "${PLAT[@]}" -d "$WORK/whl" "${PINS[@]}"
install_wheels
# the TensorRT provider is never used
rm -f "$WORK"/site/onnxruntime/capi/libonnxruntime_providers_tensorrt.so
rm -rf .dev/cudaep
mkdir -p .dev/cudaep
tar -C "$WORK/site" -cf - . | xz -9 -T0 | split -b 48M - .dev/cudaep/cudaep.tar.xz.part-
# run_all.sh waits until every piece listed here has arrived intact
(cd .dev/cudaep && sha256sum cudaep.tar.xz.part-* > SHA256SUMS)
ls -la .dev/cudaep

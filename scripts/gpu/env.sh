# Source me on the lent GPU machine: unpacks the constraints/gpu.txt packages and sets the
# offline environment the GPU scripts and `pytest -m gpu` expect.
#   source scripts/gpu/env.sh
# (Elsewhere, install constraints/gpu.txt into a venv instead; this file then only sets
# the environment variables.) .dev/site312.tar.xz comes from scripts/gpu/build_site.sh.
GPU_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GPU_SITE=${GPU_SITE:-/tmp/site}
if [ -f "$GPU_REPO/.dev/site312.tar.xz" ] && [ ! -f "$GPU_SITE/.complete" ]; then
    mkdir -p "$GPU_SITE"
    xz -dc "$GPU_REPO/.dev/site312.tar.xz" | tar -xf - -C "$GPU_SITE" && touch "$GPU_SITE/.complete"
fi
[ -f "$GPU_SITE/.complete" ] && export PYTHONPATH="$GPU_SITE${PYTHONPATH:+:$PYTHONPATH}"
# src/ first: the scripts and tests use the checkout's olive_workflows, installed or not
export PYTHONPATH="$GPU_REPO/src${PYTHONPATH:+:$PYTHONPATH}"
# no network there; Olive's telemetry would otherwise wait on its exporter at exit
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OLIVE_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

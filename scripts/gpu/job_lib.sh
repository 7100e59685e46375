# Shared by the GPU jobs (source me from the repository root on the lent GPU machine).
#   build_env           scripts/gpu/env.sh, plus the awq_compat sitecustomize: the GPU build
#                       environment has autoawq, which peft imports when it is installed, and
#                       autoawq 0.2.9 needs transformers' PytorchGELUTanh alias
#                       (patches/awq_compat.py) even for a LoRA without AWQ
#   timed PREFIX NAME FOLDER [bench_speed.py options]
#                       bench_speed.py --reuse FOLDER on the CUDA EP (REPEATS rounds) into
#                       $R/PREFIX-NAME.json/.txt, and its Targets line into progress.txt
#   job_start WORK      for a small job: note() into $R/progress.txt, WORK made afresh,
#                       the tiny model built if missing (models/tiny-phi3)
#   wait_cudaep         wait (up to CUDAEP_WAIT s, 900) for every piece of .dev/cudaep
# All expect R (the results folder); timed expects note().
build_env() {
    source scripts/gpu/env.sh
    mkdir -p .dev/sitecustom
    printf 'try:\n    from olive_workflows.patches import awq_compat\n    awq_compat.install()\nexcept Exception:\n    pass\n' > .dev/sitecustom/sitecustomize.py
    export PYTHONPATH="$PWD/.dev/sitecustom:$PYTHONPATH"
}

timed() {
    local prefix=$1 name=$2 folder=$3
    shift 3
    ( source scripts/gpu/env_cuda_ep.sh \
      && python3 scripts/bench_speed.py --reuse "$folder" --device cuda \
           --repeats "${REPEATS:-30}" "$@" --out "$R/$prefix-$name.json" ) \
        > "$R/$prefix-$name.txt" 2>&1
    note "$name rc=$? $(grep -E '^Targets' "$R/$prefix-$name.txt" | cut -c1-110)"
}

note() { echo "$(date -u +%FT%TZ) $*" | tee -a "$R/progress.txt"; }

job_start() {
    rm -rf "$1" && mkdir -p "$1"
    [ -f models/tiny-phi3/config.json ] \
        || python3 -m olive_workflows tiny-model --out models/tiny-phi3 >> "$R/progress.txt" 2>&1
}

wait_cudaep() {
    note "waiting for .dev/cudaep"
    local end=$((SECONDS + ${CUDAEP_WAIT:-900}))
    until (cd .dev/cudaep 2>/dev/null && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1); do
        [ $SECONDS -ge $end ] && break
        sleep 5
    done
}

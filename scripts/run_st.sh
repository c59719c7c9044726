#!/usr/bin/env bash
# scripts/run_st.sh PROFILE [--data-root DIR] [--jobs N] [--runs-dir DIR] [--only REGEX]
# Runs every ST stage of configs/PROFILE/st/ in dependency order; a run already DONE with the same config is
# skipped by speechkd itself, an interrupted one resumes. The stage of a config follows from its file name:
#   st_prep_*  -> st-prep        *_eval -> st-eval        synthetic_* -> st-synthetic      other -> st-train
# Phases (each waits for the previous one):
#   1. st_prep_nmt (the expert's text + BPE), then every other st_prep_*  (the speech preps use its codes)
#   2. nmt_expert* and asr_* training (in parallel, up to --jobs processes)
#   3. per corpus (mustc, covost2, ... in parallel): synthetic_<c>, the st_<c>_* students, then every eval of
#      that corpus (asr_<c>_eval, nmt_expert_<c>_eval, st_<c>_*_eval)
# With --jobs N > 1 every process runs torch with OMP_NUM_THREADS=1 (N small models side by side use the cores
# better than one model with N threads). Each run's output goes to <runs-dir>/PROFILE/st_logs/<name>.log.
# --only REGEX keeps the configs whose name matches (grep -E), e.g. --only '_nll|^asr|^st_prep|^nmt|^synth'.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-}" in -h|--help) sed -n '2,13p' "$0"; exit 0 ;; esac
profile="${1:-embedded}"
[ $# -gt 0 ] && shift
data_root=""
jobs=""
runs_dir="runs"
only="."
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root) data_root="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --runs-dir) runs_dir="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run_st.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
dir="configs/$profile/st"
if [ ! -d "$dir" ]; then echo "run_st.sh: no configs in $dir" >&2; exit 2; fi
if [ -z "$jobs" ]; then jobs=$([ "$profile" = embedded ] && echo 2 || echo 1); fi
[ -x .venv/bin/speechkd ] && export PATH="$PWD/.venv/bin:$PATH"
if [ "$jobs" -gt 1 ]; then export OMP_NUM_THREADS=1; fi
log_dir="$runs_dir/$profile/st_logs"
mkdir -p "$log_dir"
start_all=$SECONDS

stage_of() {
  case "$1" in
    st_prep_*) echo st-prep ;;
    *_eval) echo st-eval ;;
    synthetic_*) echo st-synthetic ;;
    *) echo st-train ;;
  esac
}

run_one() {  # run_one NAME: one config, output to its log
  local name="$1" stage t0=$SECONDS
  stage=$(stage_of "$name")
  local args=(--config "$dir/$name.json" --set "runs_dir=$runs_dir")
  if [ -n "$data_root" ] && [ "$stage" != st-eval ] && [ "$stage" != st-generate ]; then
    args+=(--set "data_root=$data_root")
  fi
  if ! speechkd "$stage" "${args[@]}" >"$log_dir/$name.log" 2>&1; then
    echo "=== $name ($stage) FAILED: see $log_dir/$name.log" >&2
    tail -n 20 "$log_dir/$name.log" >&2
    return 1
  fi
  echo "=== $name ($stage) done in $((SECONDS - t0)) s (total $((SECONDS - start_all)) s)"
}

run_chain() {  # run_chain NAME...: sequentially
  local name
  for name in "$@"; do run_one "$name" || return 1; done
}

names() {  # names GLOB...: config names matching, sorted, that exist
  local pattern f
  for pattern in "$@"; do
    for f in "$dir"/$pattern.json; do [ -e "$f" ] && basename "$f" .json; done
  done | sort -u | { grep -E -- "$only" || true; }
}

parallel() {  # parallel "chain1 names" "chain2 names" ...: at most $jobs chains at a time
  local chain status=0
  for chain in "$@"; do
    [ -z "$chain" ] && continue
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || status=1; done
    # shellcheck disable=SC2086
    run_chain $chain &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
  return $status
}

# phase 1: preps
run_chain $(names st_prep_nmt)
run_chain $(names 'st_prep_*' | grep -v '^st_prep_nmt$' || true)

# phase 2: the expert and the ASR models
chains=()
for name in $(names 'nmt_expert*' | grep -v '_eval$' || true) \
            $(names 'asr_*' | grep -v '_eval$' || true); do
  chains+=("$name")
done
parallel "${chains[@]}"

# phase 3: per corpus, synthetic data, students, evaluations
corpora=$(names 'st_prep_*' | grep -v '^st_prep_nmt$' | sed 's/^st_prep_//' || true)
chains=()
for c in $corpora; do
  chain="$(names "synthetic_$c") $(names "st_${c}_*" | grep -v '_eval$' || true)"
  chain="$chain $(names "asr_${c}_eval" "nmt_expert_${c}_eval" "st_${c}_*_eval")"
  chains+=("$(echo $chain)")
done
parallel "${chains[@]}"
echo "=== ST pipeline ($profile) done in $((SECONDS - start_all)) s"

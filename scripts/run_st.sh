#!/usr/bin/env bash
# scripts/run_st.sh PROFILE [--data-root DIR] [--jobs N] [--runs-dir DIR] [--seeds K] [--only REGEX]
#                   [--set KEY=VALUE ...]
# Runs every ST stage of configs/PROFILE/st/ in dependency order; a run already DONE with the same config is
# skipped by speechkd itself, an interrupted one resumes. The stage of a config follows from its file name:
#   st_prep_*  -> st-prep        *_eval -> st-eval        synthetic_* -> st-synthetic      other -> st-train
# Up to --jobs runs at a time; a run starts once the runs its config names are done: st_prep_nmt (the expert's text
# + BPE) -> the speech preps (its codes) -> nmt_expert*, asr_* -> synthetic_* (the ASR transcripts) -> the st_*
# students -> every *_eval. Among the runs that could start, the expert and ASR models go first, then the
# students (the slower RNN ones first, so that the pool ends evenly), then the evaluations.
# With --jobs N > 1 every process runs torch with OMP_NUM_THREADS=1 (N small models side by side use the cores
# better than one model with N threads). --seeds K also trains and evaluates every student with seeds 2..K
# (runs <name>_seed<k>). Each run's output goes to <runs-dir>/PROFILE/st_logs/<run>.log.
# --only REGEX keeps the configs whose name matches (grep -E), e.g. --only '_nll|^asr|^st_prep|^nmt|^synth'.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/stages.sh

case "${1:-}" in -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;; esac
profile="${1:-embedded}"
[ $# -gt 0 ] && shift
data_root=""
jobs=""
runs_dir="runs"
seeds=1
only="."
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root) data_root="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --runs-dir) runs_dir="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --set) extra+=("$2"); shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
    *) echo "run_st.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
dir="configs/$profile/st"
if [ ! -d "$dir" ]; then echo "run_st.sh: no configs in $dir" >&2; exit 2; fi
if [ -z "$jobs" ]; then jobs=$([ "$profile" = embedded ] && echo 2 || echo 1); fi
LOG_DIR="$runs_dir/$profile/st_logs"
mkdir -p "$LOG_DIR"
start_all=$SECONDS

stage_of() {
  case "$1" in
    st_prep_*) echo st-prep ;;
    *_eval) echo st-eval ;;
    synthetic_*) echo st-synthetic ;;
    *) echo st-train ;;
  esac
}

config_of() { echo "$dir/$1.json"; }
overrides_of() {
  echo "runs_dir=$runs_dir"
  case "$(stage_of "$1")" in st-eval) ;; *) [ -n "$data_root" ] && echo "data_root=$data_root" ;; esac
  [ ${#extra[@]} -gt 0 ] && printf '%s\n' "${extra[@]}"
  return 0
}
names() {  # names GLOB...: config names matching, sorted, that exist
  local pattern f
  for pattern in "$@"; do
    for f in "$dir"/$pattern.json; do if [ -e "$f" ]; then basename "$f" .json; fi; done
  done | sort -u | { grep -E -- "$only" || true; }
}

students=$(names 'st_*' | grep -v '^st_prep_\|_eval$' || true)
# shellcheck disable=SC2046,SC2086
tokens="$(names st_prep_nmt) $(names 'st_prep_*' | grep -v '^st_prep_nmt$' || true)
  $(names 'nmt_expert*' | grep -v '_eval$' || true) $(names 'asr_*' | grep -v '_eval$' || true) $(names 'synthetic_*')
  $(with_seeds "$seeds" $(echo "$students" | grep '_rnn_' || true) $(echo "$students" | grep -v '_rnn_' || true))
  $(names 'asr_*_eval' 'nmt_expert_*_eval') $(with_seeds "$seeds" $(names 'st_*_eval'))"
# shellcheck disable=SC2086
run_pool run_st.sh "$jobs" $tokens
echo "=== ST pipeline ($profile) done in $((SECONDS - start_all)) s"

#!/usr/bin/env bash
# scripts/run_slu.sh [PROFILE] [--data-root DIR] [--jobs N] [--runs-dir DIR] [--seeds K] [--set KEY=VALUE ...]
#                    [--only REGEX] [--corpora JSON]
# Runs every SLU stage of a profile (configs/<profile>/slu/*.json), N at a time (default 2; each with one intra-op
# thread when N > 1: the embedded models are small, so two single-threaded processes beat one two-threaded one on
# 2 cores). A run starts once the runs its config names are done: units -> MLM pre-training (embedded) -> PT-KD
# -> AM-PT, text teachers -> the table rows (+base, +PT-KD, +FT-KD, +AM-PT, +DA) -> slu-infer.
# --seeds K also trains every table row with seeds 2..K (runs <row>_seed<k>; the tables average them).
# A run already DONE with the same config hash is skipped by the stage itself; an interrupted one resumes.
# --only REGEX keeps the configs whose name matches (grep -E); --corpora '["fsc"]' makes slu_units tokenise only
# those corpora (run_all.sh --only fsc). Each run's output goes to <runs-dir>/<profile>/slu_logs/<run>.log.
# Launching: scripts/lib/stages.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/stages.sh

profile=embedded
jobs=2
runs_dir=runs
seeds=1
only="."
corpora=""
extra=()
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then profile="$1"; shift; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root) extra+=("data_root=$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --runs-dir) runs_dir="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --set) extra+=("$2"); shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --corpora) corpora="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
    *) echo "run_slu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
conf_dir="configs/$profile/slu"
[ -d "$conf_dir" ] || { echo "run_slu.sh: no $conf_dir" >&2; exit 2; }
LOG_DIR="$runs_dir/$profile/slu_logs"
mkdir -p "$LOG_DIR"

stage_of() {  # run name -> stage
  case "$1" in
    slu_units) echo slu-units ;;
    slu_vq_bert|slu_text_roberta) echo slu-mlm-pretrain ;;
    slu_text_*) echo slu-text-finetune ;;
    slu_ptkd) echo slu-pt-kd ;;
    slu_ampt) echo slu-am-pretrain ;;
    slu_infer) echo slu-infer ;;
    *) echo slu-finetune ;;
  esac
}

config_of() { echo "$conf_dir/$1.json"; }
overrides_of() {
  echo "runs_dir=$runs_dir"
  [ "$1" = slu_units ] && [ -n "$corpora" ] && echo "only_corpora=$corpora"
  [ ${#extra[@]} -gt 0 ] && printf '%s\n' "${extra[@]}"
  return 0
}
rows() {  # rows ROW -> every corpus's run of that row (the largest first), for every seed
  local r="$1"
  with_seeds "$seeds" "slu_fsc_full_$r" "slu_snips_$r" "slu_lights_close_$r" "slu_lights_far_$r" "slu_fsc_10pct_$r"
}

start=$SECONDS
all_tokens() {
  local f
  for f in "$conf_dir"/*.json; do basename "$f" .json; done
  for r in base ptkd ftkd ampt da; do rows "$r"; done | grep '#' || true
}
# the longest chain first (units, VQ-BERT, PT-KD, AM-PT, then the rows that wait for AM-PT), then the rest
order() {
  local t r
  for t in slu_units slu_vq_bert slu_text_roberta slu_ptkd slu_ampt slu_text_fsc slu_text_snips \
           slu_text_lights_close slu_text_lights_far; do echo "$t"; done
  for r in da ampt ftkd ptkd base; do rows "$r"; done
  all_tokens
}
tokens=$(order | awk '!seen[$0]++' | while read -r t; do if [ -f "$(config_of "${t%%#*}")" ]; then echo "$t"; fi; done \
  | { grep -E -- "$only" || true; })
# shellcheck disable=SC2086
run_pool run_slu.sh "$jobs" $tokens
echo "--- slu: every run done in $((SECONDS - start)) s"

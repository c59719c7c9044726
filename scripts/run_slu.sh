#!/usr/bin/env bash
# scripts/run_slu.sh [PROFILE] [--data-root DIR] [--jobs N] [--runs-dir DIR] [--seeds K] [--set KEY=VALUE ...]
# Runs every SLU stage of a profile (configs/<profile>/slu/*.json) in dependency order:
#   1 units | 2 MLM pre-training (embedded) | 3 PT-KD, text teachers, +base rows | 4 AM-PT, +PT-KD, +FT-KD rows
#   | 5 +AM-PT, +DA rows | 6 slu-infer
# Runs inside a phase are independent and run N at a time (default 2; each with one intra-op thread when N > 1:
# the embedded models are small, so two single-threaded processes beat one two-threaded one on 2 cores).
# --seeds K also trains every table row with seeds 2..K (runs <row>_seed<k>; the tables average them).
# A run already DONE with the same config hash is skipped by the stage itself; an interrupted one resumes.
# Each run's output goes to <runs-dir>/<profile>/slu_logs/<run>.log. Launching: scripts/lib/stages.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/stages.sh

profile=embedded
jobs=2
runs_dir=runs
seeds=1
extra=()
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then profile="$1"; shift; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root) extra+=("data_root=$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --runs-dir) runs_dir="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --set) extra+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
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
  [ ${#extra[@]} -gt 0 ] && printf '%s\n' "${extra[@]}"
  return 0
}
phase() {  # phase TITLE TOKEN... (tokens without a config file in this profile are skipped)
  local title="$1"; shift
  local tokens=() t
  for t in "$@"; do [ -f "$conf_dir/${t%%#*}.json" ] && tokens+=("$t"); done
  [ ${#tokens[@]} -gt 0 ] || return 0
  echo "--- slu phase: $title (${#tokens[@]} runs)"
  parallel "$jobs" "${tokens[@]}" || { echo "run_slu.sh: phase '$title' failed" >&2; exit 1; }
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
load_pending $(all_tokens)
phase units slu_units
phase "MLM pre-training" slu_text_roberta slu_vq_bert
phase "PT-KD, text teachers, VQ-BERT+DS2" slu_ptkd $(rows base) slu_text_fsc slu_text_snips slu_text_lights_close \
  slu_text_lights_far
phase "AM-PT, +PT-KD, +FT-KD" slu_ampt $(rows ptkd) $(rows ftkd)
phase "+AM-PT, +DA" $(rows ampt) $(rows da)
phase inference slu_infer
echo "--- slu: all phases done in $((SECONDS - start)) s"

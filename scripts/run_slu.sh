#!/usr/bin/env bash
# scripts/run_slu.sh [PROFILE] [--data-root DIR] [--jobs N] [--runs-dir DIR] [--set KEY=VALUE ...]
# Runs every SLU stage of a profile (configs/<profile>/slu/*.json) in dependency order:
#   1 units | 2 MLM pre-training (embedded) | 3 PT-KD, text teachers, +base rows | 4 AM-PT, +PT-KD, +FT-KD rows
#   | 5 +AM-PT, +DA rows | 6 slu-infer
# Runs inside a phase are independent and run N at a time (default 2; each with one intra-op thread when N > 1:
# the embedded models are small, so two single-threaded processes beat one two-threaded one on 2 cores).
# A run already DONE with the same config hash is skipped by the stage itself; an interrupted one resumes.
# Each run's output goes to <runs-dir>/<profile>/slu_logs/<name>.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile=embedded
jobs=2
runs_dir=runs
extra=()
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then profile="$1"; shift; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root) extra+=(--set "data_root=$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --runs-dir) runs_dir="$2"; shift 2 ;;
    --set) extra+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run_slu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
conf_dir="configs/$profile/slu"
[ -d "$conf_dir" ] || { echo "run_slu.sh: no $conf_dir" >&2; exit 2; }
speechkd=speechkd
command -v speechkd >/dev/null 2>&1 || speechkd=.venv/bin/speechkd
log_dir="$runs_dir/$profile/slu_logs"
mkdir -p "$log_dir"

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

run_one() {  # run_one NAME
  local name="$1" t0=$SECONDS
  local stage; stage=$(stage_of "$name")
  if "$speechkd" "$stage" --config "$conf_dir/$name.json" --set "runs_dir=$runs_dir" "${extra[@]}" \
      >"$log_dir/$name.log" 2>&1; then
    echo "  $name ($stage) $((SECONDS - t0)) s"
  else
    echo "  $name ($stage) FAILED after $((SECONDS - t0)) s; last lines of $log_dir/$name.log:" >&2
    tail -n 20 "$log_dir/$name.log" >&2
    return 1
  fi
}

phase() {  # phase TITLE NAME... (names without a config file in this profile are skipped)
  local title="$1"; shift
  local names=() n
  for n in "$@"; do [ -f "$conf_dir/$n.json" ] && names+=("$n"); done
  [ ${#names[@]} -gt 0 ] || return 0
  echo "--- slu phase: $title (${#names[@]} runs)"
  if [ "$jobs" -le 1 ] || [ ${#names[@]} -eq 1 ]; then
    for n in "${names[@]}"; do run_one "$n"; done
    return 0
  fi
  local pids=() failed=0
  for n in "${names[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; done
    OMP_NUM_THREADS=1 run_one "$n" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  [ "$failed" -eq 0 ] || { echo "run_slu.sh: phase '$title' failed" >&2; exit 1; }
}

rows() {  # rows ROW -> every corpus's run of that row, the largest first
  local r="$1"
  echo "slu_fsc_full_$r slu_snips_$r slu_lights_close_$r slu_lights_far_$r slu_fsc_10pct_$r"
}

start=$SECONDS
phase units slu_units
phase "MLM pre-training" slu_text_roberta slu_vq_bert
phase "PT-KD, text teachers, VQ-BERT+DS2" slu_ptkd $(rows base) slu_text_fsc slu_text_snips slu_text_lights_close \
  slu_text_lights_far
phase "AM-PT, +PT-KD, +FT-KD" slu_ampt $(rows ptkd) $(rows ftkd)
phase "+AM-PT, +DA" $(rows ampt) $(rows da)
phase inference slu_infer
echo "--- slu: all phases done in $((SECONDS - start)) s"

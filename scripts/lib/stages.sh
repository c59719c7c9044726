# Sourced by scripts/run_slu.sh and scripts/run_st.sh: how the runs of a pipeline are launched.
#
# A run is named by a TOKEN: a config name, or NAME#K for seed K of that config (K >= 2; seed 1 is the config
# itself). Seed K writes the run NAME_seedK with `seed=K`; an evaluation NAME_eval#K evaluates the model run
# NAME_seedK. speechkd.tables.render averages NAME, NAME_seed2, ... into one cell (mean ± std).
#
# The sourcing script defines `stage_of NAME`, `config_of NAME` and `overrides_of NAME` (KEY=VALUE lines), and
# LOG_DIR (each run's output goes to LOG_DIR/<run>.log).
# Environment:
#   SPEECHKD_GPUS            > 1: training stages start through torchrun with that many processes per node
#   SPEECHKD_TORCHRUN_ARGS   extra torchrun arguments for several nodes, e.g.
#                            "--nnodes 2 --node-rank 0 --rdzv-backend c10d --rdzv-endpoint host0:29400"

[ -x .venv/bin/speechkd ] && export PATH="$PWD/.venv/bin:$PATH"

is_training_stage() {
  case "$1" in
    st-train|slu-mlm-pretrain|slu-text-finetune|slu-pt-kd|slu-am-pretrain|slu-finetune) return 0 ;;
    *) return 1 ;;
  esac
}

run_name() {  # run_name TOKEN: the run directory's name
  local name="${1%%#*}"
  if [ "$name" = "$1" ]; then echo "$name"; else echo "${name}_seed${1##*#}"; fi
}

overrides() {  # overrides TOKEN: every KEY=VALUE of the run, one a line (the script's, then the seed's)
  local token="$1" name="${1%%#*}" seed
  overrides_of "$name"
  [ "$name" = "$token" ] && return 0
  seed="${token##*#}"
  echo "seed=$seed"
  echo "name=${name}_seed$seed"
  case "$name" in *_eval) echo "model_run=${name%_eval}_seed$seed" ;; esac
}

with_seeds() {  # with_seeds K NAME...: the tokens of NAME... for seeds 1..K
  local k="$1" name s; shift
  for name in "$@"; do
    echo "$name"
    for ((s = 2; s <= k; s++)); do echo "$name#$s"; done
  done
}

# load_pending TOKEN...: one `speechkd pending` process decides which runs are not DONE yet (a rerun of a
# finished pipeline then costs one start-up, not one per run); launch_run skips the others.
PENDING=""
load_pending() {
  local token name line
  PENDING=$'\n'"$(for token in "$@"; do
    name="${token%%#*}"
    [ -f "$(config_of "$name")" ] || continue
    line="$token"$'\t'"$(stage_of "$name")"$'\t'"$(config_of "$name")"
    while IFS= read -r kv; do line+=$'\t'"$kv"; done < <(overrides "$token")
    echo "$line"
  done | speechkd pending)"$'\n'
}

# launch_run TOKEN LOG_DIR: one run, its output to LOG_DIR/<run>.log; prints one line with the elapsed time,
# or the log's last lines on failure (and returns 1)
launch_run() {
  local token="$1" log_dir="$2" t0=$SECONDS name="${1%%#*}" run stage kv
  run=$(run_name "$token")
  stage=$(stage_of "$name")
  if [[ "$PENDING" != *$'\n'"$token"$'\n'* ]]; then echo "  $run ($stage) DONE, skipped"; return 0; fi
  local cmd=(speechkd) args=(--config "$(config_of "$name")")
  while IFS= read -r kv; do args+=(--set "$kv"); done < <(overrides "$token")
  if [ "${SPEECHKD_GPUS:-1}" -gt 1 ] && is_training_stage "$stage"; then
    # shellcheck disable=SC2206  # word splitting of the extra arguments is wanted
    cmd=(torchrun --nproc_per_node="$SPEECHKD_GPUS" ${SPEECHKD_TORCHRUN_ARGS:-} "$(command -v speechkd)")
  fi
  if "${cmd[@]}" "$stage" "${args[@]}" >"$log_dir/$run.log" 2>&1; then
    echo "  $run ($stage) $((SECONDS - t0)) s"
  else
    echo "  $run ($stage) FAILED after $((SECONDS - t0)) s; last lines of $log_dir/$run.log:" >&2
    tail -n 20 "$log_dir/$run.log" >&2
    return 1
  fi
}

run_chain() {  # run_chain TOKEN...: one after the other, stopping at the first failure
  local token
  for token in "$@"; do launch_run "$token" "$LOG_DIR" || return 1; done
}

# parallel JOBS "CHAIN" ...: each CHAIN (space-separated tokens) runs in order, up to JOBS chains at a time, each
# with one intra-op thread (small models side by side use the cores better than one model with several threads);
# returns 1 if any chain failed
parallel() {
  local jobs="$1" chain status=0; shift
  if [ "$jobs" -le 1 ] || [ $# -le 1 ]; then
    # shellcheck disable=SC2086
    for chain in "$@"; do run_chain $chain || return 1; done
    return 0
  fi
  for chain in "$@"; do
    [ -z "$chain" ] && continue
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || status=1; done
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 run_chain $chain &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
  return $status
}

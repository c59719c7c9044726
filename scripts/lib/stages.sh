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
STAGES_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

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
# finished pipeline then costs one start-up, not one per run) and what each of them waits for: the pending runs
# its config names (DEPS[token]). launch_run skips the runs that are not pending.
declare -A DEPS=()
load_pending() {
  local token name line deps
  DEPS=()
  while IFS=$'\t' read -r token deps; do
    [ -n "$token" ] && DEPS[$token]="$deps"
  done < <(for token in "$@"; do
    name="${token%%#*}"
    [ -f "$(config_of "$name")" ] || continue
    line="$token"$'\t'"$(stage_of "$name")"$'\t'"$(config_of "$name")"
    while IFS= read -r kv; do line+=$'\t'"$kv"; done < <(overrides "$token")
    echo "$line"
  done | speechkd pending)
}

# launch_run TOKEN LOG_DIR [PROGRESS]: one run, its output to LOG_DIR/<run>.log; prints one line (PROGRESS, e.g.
# "[3/29]", first) with the elapsed time, or the log's last lines on failure (and returns 1)
launch_run() {
  local token="$1" log_dir="$2" t0=$SECONDS name="${1%%#*}" run stage kv head
  run=$(run_name "$token")
  stage=$(stage_of "$name")
  head="  ${3:+$3 }$run"
  if [ -z "${DEPS[$token]+set}" ]; then echo "$head ($stage) DONE, skipped"; return 0; fi
  local cmd=(speechkd) args=(--config "$(config_of "$name")")
  while IFS= read -r kv; do args+=(--set "$kv"); done < <(overrides "$token")
  if [ "${SPEECHKD_GPUS:-1}" -gt 1 ] && is_training_stage "$stage"; then
    # shellcheck disable=SC2206  # word splitting of the extra arguments is wanted
    cmd=(torchrun --nproc_per_node="$SPEECHKD_GPUS" ${SPEECHKD_TORCHRUN_ARGS:-} "$(command -v speechkd)")
  elif [ -n "${FORKSERVER_SOCKET:-}" ]; then
    cmd=(python3 -S "$STAGES_LIB/forkrun.py" "$FORKSERVER_SOCKET" "$log_dir/$run.log")
  fi
  if "${cmd[@]}" "$stage" "${args[@]}" >"$log_dir/$run.log" 2>&1; then
    echo "$head ($stage) $((SECONDS - t0)) s"
  else
    echo "$head ($stage) FAILED after $((SECONDS - t0)) s; last lines of $log_dir/$run.log:" >&2
    tail -n 20 "$log_dir/$run.log" >&2
    return 1
  fi
}

# pool JOBS TOKEN...: every TOKEN, up to JOBS at a time. A run starts as soon as the pending runs its config
# names (DEPS) have finished, and among the runs that could start, the one listed first goes first: list the
# long chains first. A run whose dependency failed or is not in the pool does not start. With JOBS > 1 each run
# has one intra-op thread (small models side by side use the cores better than one model with several threads).
# Returns 1 if any run failed or could not start.
pool() {
  local jobs="$1" token dep state status=0 done_dir started=0
  shift
  local -a todo=("$@") waiting
  local -A running=() finished=() failed=() listed=()
  for token in "$@"; do listed[$token]=1; done
  done_dir=$(mktemp -d)  # <token> holds the exit status of its run once it has ended
  while [ ${#todo[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
    waiting=()
    for token in ${todo[@]+"${todo[@]}"}; do
      state=ready
      for dep in ${DEPS[$token]:-}; do
        if [ -n "${failed[$dep]:-}" ] || [ -z "${listed[$dep]:-}" ]; then state=blocked; break; fi
        [ -z "${finished[$dep]:-}" ] && state=waiting
      done
      if [ "$state" = blocked ]; then
        echo "  $(run_name "$token") not started: it needs ${DEPS[$token]}, not all of which finished" >&2
        failed[$token]=1; status=1
      elif [ "$state" = ready ] && [ ${#running[@]} -lt "$jobs" ]; then
        started=$((started + 1))
        (
          if [ "$jobs" -gt 1 ]; then export OMP_NUM_THREADS=1; fi
          if launch_run "$token" "$LOG_DIR" "[$started/$#]"; then echo 0 >"$done_dir/$token"
          else echo 1 >"$done_dir/$token"; fi
        ) &
        running[$token]=1
      else
        waiting+=("$token")
      fi
    done
    todo=(${waiting[@]+"${waiting[@]}"})
    [ ${#running[@]} -eq 0 ] && continue
    wait -n 2>/dev/null || true  # until a run ends (the status files say which)
    for token in "${!running[@]}"; do
      [ -f "$done_dir/$token" ] || continue
      if [ "$(cat "$done_dir/$token")" = 0 ]; then finished[$token]=1; else failed[$token]=1; status=1; fi
      unset "running[$token]"
    done
  done
  rm -rf "$done_dir"
  return $status
}

# start_forkserver / stop_forkserver: a `speechkd forkserver` whose forks run the pool's runs, so that a run does
# not pay for importing torch and the stages again (src/speechkd/forkserver.py). SPEECHKD_FORKSERVER=0 turns it
# off; if it does not start, runs start as fresh processes.
FORKSERVER_PID="" FORKSERVER_DIR="" FORKSERVER_SOCKET=""
start_forkserver() {
  [ "${SPEECHKD_FORKSERVER:-1}" = 0 ] && return 0
  FORKSERVER_DIR=$(mktemp -d)
  speechkd forkserver --socket "$FORKSERVER_DIR/sock" >"$LOG_DIR/forkserver.log" 2>&1 &
  FORKSERVER_PID=$!
  trap stop_forkserver EXIT
}
await_forkserver() {  # until the server listens (it imports every stage first)
  [ -n "$FORKSERVER_PID" ] || return 0
  local i
  for ((i = 0; i < 1200; i++)); do
    if [ -S "$FORKSERVER_DIR/sock" ]; then FORKSERVER_SOCKET="$FORKSERVER_DIR/sock"; return 0; fi
    kill -0 "$FORKSERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "  no fork server (see $LOG_DIR/forkserver.log): runs start as fresh processes" >&2
  stop_forkserver
}
stop_forkserver() {
  [ -n "$FORKSERVER_PID" ] || return 0
  kill "$FORKSERVER_PID" 2>/dev/null || true
  wait "$FORKSERVER_PID" 2>/dev/null || true
  rm -rf "$FORKSERVER_DIR"
  FORKSERVER_PID="" FORKSERVER_DIR="" FORKSERVER_SOCKET=""
}

# run_pool WHO JOBS TOKEN...: which of TOKEN... are pending, then `pool` them; exits 1 on failure (WHO: the script)
run_pool() {
  local who="$1" jobs="$2" status=0
  shift 2
  start_forkserver  # it imports while `speechkd pending` runs
  load_pending "$@"
  if [ ${#DEPS[@]} -gt 0 ]; then await_forkserver; else stop_forkserver; fi
  pool "$jobs" "$@" || status=1
  stop_forkserver
  [ "$status" = 0 ] || { echo "$who: some runs failed (see above)" >&2; exit 1; }
}

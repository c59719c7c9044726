#!/usr/bin/env bash
# ./run_all.sh — regenerate every table of both papers (see --help).
# Each stage below is a script or a `speechkd <stage> --config configs/<profile>/...json` command; a run that is
# already DONE with the same config hash is skipped, an interrupted one resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

profile=embedded
data_root=""
stage=0
stop_stage=100
only=""
scale=""
runs_dir=runs
results_dir=""
seeds=1
gpus=1
torchrun_args=""
usage() {
  cat <<USAGE
usage: ./run_all.sh [--profile embedded|paper] [--data-root DIR] [--stage N] [--stop-stage M]
                    [--only PART] [--scale NAME] [--seeds K] [--gpus N] [--torchrun-args "ARGS"]
                    [--runs-dir DIR] [--results-dir DIR]
stages:
  0  install   create/reuse .venv with the pinned dependencies (scripts/install.sh)
  1  data      embedded: generate the corpora (speechkd synth, configs/embedded/synth.json)
               paper: check that every corpus and checkpoint is under --data-root (speechkd preflight)
  2  slu       every SLU run in dependency order (speechkd pipeline slu; configs/<profile>/slu/)
  3  st        every ST run in dependency order (speechkd pipeline st; configs/<profile>/st/)
  4  report    the paper tables and the report -> results/<profile>/ (speechkd report)
options:
  --profile      embedded (default: generated data, CPU, no download) or paper (real data, --data-root)
  --only PART    run, preflight and report one part: slu, st, a corpus (fsc, snips, smartlights, mustc, covost2)
                 or a table (table2, table3); the report marks the other tables as not run
                 (parts: manifests/paper_inputs.json, printed by `speechkd part NAME`)
  --scale NAME   a scale-down of every run (configs/scales/NAME.json: caps on epochs, updates, sizes, batch;
                 every other hyperparameter unchanged), e.g. smoke
  --runs-dir DIR  root of the run directories (default runs/; runs go to DIR/<profile>/<run>)
  --results-dir DIR  where the tables and report go (default results/<profile>)
  --seeds K      train every table row with seeds 1..K; tables show mean ± std
  --gpus N       start training through torchrun with N processes (one per GPU)
  --torchrun-args  extra torchrun arguments for several nodes, e.g.
                 "--nnodes 2 --node-rank 0 --rdzv-backend c10d --rdzv-endpoint host0:29400"
USAGE
}
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --data-root) data_root="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --scale) scale="$2"; shift 2 ;;
    --runs-dir) runs_dir="$2"; shift 2 ;;
    --results-dir) results_dir="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --gpus) gpus="$2"; shift 2 ;;
    --torchrun-args) torchrun_args="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
bad() { echo "run_all.sh: $1" >&2; exit 2; }
case "$profile" in embedded|paper) ;; *) bad "unknown profile '$profile' (embedded or paper)" ;; esac
for n in "$stage" "$stop_stage" "$seeds" "$gpus"; do [[ "$n" =~ ^[0-9]+$ ]] || bad "expected a number, got '$n'"; done
[ "$seeds" -ge 1 ] && [ "$gpus" -ge 1 ] || bad "--seeds and --gpus must be >= 1"
if [ "$profile" = paper ] && [ -z "$data_root" ]; then bad "--profile paper needs --data-root DIR"; fi
if [ -n "$data_root" ]; then
  [ -d "$data_root" ] || bad "--data-root $data_root is not a directory"
  data_root="$(cd "$data_root" && pwd)"
fi

start_all=$SECONDS
run_stage() {  # run_stage N NAME command...
  local n="$1" name="$2"; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 0; fi
  local t0=$SECONDS
  echo "=== stage $n: $name ($(date +%H:%M:%S))"
  "$@"
  echo "=== stage $n: $name done in $((SECONDS - t0)) s (total $((SECONDS - start_all)) s)"
}

common=(--profile "$profile" --seeds "$seeds" --runs-dir "$runs_dir" --gpus "$gpus")
[ -n "$torchrun_args" ] && common+=(--torchrun-args "$torchrun_args")
[ -n "$data_root" ] && common+=(--data-root "$data_root")
[ -n "$scale" ] && common+=(--set "scale=$scale")

run_stage 0 install scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
# the part's selection (slu_runs, st_runs: regexes on config names; slu_corpora; tables), written once in the manifest
selection="$(speechkd part "$only")" || exit 2
eval "$selection"
if [ "$profile" = embedded ]; then
  run_stage 1 data speechkd synth --config configs/embedded/synth.json
else
  run_stage 1 data speechkd preflight --set profile=paper --set "data_root=$data_root" --set "only=$only"
fi
[ -n "$slu_runs" ] && run_stage 2 slu speechkd pipeline slu "${common[@]}" --only "$slu_runs" \
  ${slu_corpora:+--units-corpora "$slu_corpora"}
[ -n "$st_runs" ] && run_stage 3 st speechkd pipeline st "${common[@]}" --only "$st_runs"
run_stage 4 report speechkd report --set "profile=$profile" --set "runs_dir=$runs_dir" --set "out_dir=$results_dir" --set "tables=[${tables:+\"${tables//,/\",\"}\"}]"
echo "=== run_all.sh ($profile) finished in $((SECONDS - start_all)) s; results in ${results_dir:-results/$profile}/"

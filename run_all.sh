#!/usr/bin/env bash
# ./run_all.sh — regenerate every table of both papers.
#   ./run_all.sh                          embedded profile: generated data, CPU, no download
#   ./run_all.sh --stage N --stop-stage M run only stages N..M (see --help for the list)
# Each stage is a `speechkd <stage> --config configs/<profile>/<x>.json` command; a stage whose run is
# already DONE with the same config hash is skipped, an interrupted one resumes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

profile=embedded
stage=0
stop_stage=100
usage() {
  cat <<USAGE
usage: ./run_all.sh [--profile embedded] [--stage N] [--stop-stage M]
stages:
  0  install     create/reuse .venv (scripts/install.sh)
  1  synth       generate the embedded corpora (configs/embedded/synth.json)
USAGE
}
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ "$profile" != embedded ]; then
  echo "run_all.sh: profile '$profile' is not available yet (only: embedded)" >&2
  exit 2
fi

start_all=$SECONDS
run_stage() {  # run_stage N NAME command...
  local n="$1" name="$2"; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 0; fi
  local t0=$SECONDS
  echo "=== stage $n: $name"
  "$@"
  echo "=== stage $n: $name done in $((SECONDS - t0)) s (total $((SECONDS - start_all)) s)"
}

run_stage 0 install scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
run_stage 1 synth speechkd synth --config "configs/$profile/synth.json"

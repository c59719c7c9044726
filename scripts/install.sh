#!/usr/bin/env bash
# One-command install: a .venv in the repository with the pinned dependencies of requirements.lock.
# Used by run_tests.sh, run_all.sh and docker/Dockerfile alike. Re-running is a no-op (seconds)
# unless the lock files changed. torch==2.13.0 is installed first: any other spec pulls CUDA wheels.
#   scripts/install.sh          runtime dependencies + the package (editable)
#   scripts/install.sh --test   the same plus requirements-test.lock
# TORCH_INDEX_URL (unset by default) installs torch==2.13.0 from that index instead, e.g. a CUDA 12 build for
# docker/Dockerfile: TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128. It is part of the install stamp.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SPEECHKD_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

locks=("$root/requirements.lock")
[ "$want_test" = 1 ] && locks+=("$root/requirements-test.lock")
# unset TORCH_INDEX_URL adds nothing to the hashed text: existing stamps stay valid
stamp_value="$({ cat "${locks[@]}" "$root/pyproject.toml"
                 if [ -n "${TORCH_INDEX_URL:-}" ]; then echo "torch-index-url=$TORCH_INDEX_URL"; fi
               } | sha256sum | cut -c1-16)"
stamp_file="$venv/.speechkd-installed-$( [ "$want_test" = 1 ] && echo test || echo run )"

if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_value" ]; then
  exit 0
fi

"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "speechkd needs Python 3.11, found %s" % sys.version.split()[0]'
if [ ! -x "$venv/bin/python" ]; then
  echo "[install] creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  # the lock's later `torch==2.13.0` is satisfied by 2.13.0+cuXXX (local versions match), so it stays
  echo "[install] torch==2.13.0 from $TORCH_INDEX_URL first"
  "${pip[@]}" install --index-url "$TORCH_INDEX_URL" "torch==2.13.0"
else
  echo "[install] torch==2.13.0 (CPU build) first"
  "${pip[@]}" install "torch==2.13.0"
fi
echo "[install] pinned dependencies: ${locks[*]##*/}"
for lock in "${locks[@]}"; do "${pip[@]}" install -r "$lock"; done
# --no-deps: everything the package needs is already pinned above; never let pip resolve torch again.
"${pip[@]}" install --no-deps --no-build-isolation -e "$root"
# pip byte-compiles what it installs, but not an editable package: compile it once here, since with
# PYTHONDONTWRITEBYTECODE=1 (set on these machines) each of a pipeline's ~80 processes would compile it again
# (0.5 s each). An edited file is recompiled in memory, as without this.
"$venv/bin/python" -m compileall -q "$root/src/speechkd" >/dev/null
echo "$stamp_value" > "$stamp_file"
echo "[install] done: $venv"

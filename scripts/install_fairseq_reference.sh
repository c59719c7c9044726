#!/usr/bin/env bash
# scripts/install_fairseq_reference.sh [DIR] — a throwaway venv with fairseq-fixed 0.12.3.1, the TEST-TIME reference
# that the parity tests and bench/ compare against through $FAIRSEQ_PYTHON. Never a dependency of speechkd.
# Recipe: ../shared/reference/environment.md §2b — torch==2.13.0 first (fairseq-fixed's build-system.requires
# says torch>=1.10, so a plain/isolated build would pull a multi-GB CUDA torch), then the pinned build/runtime deps,
# then fairseq-fixed with --no-deps --no-build-isolation (its C++/Cython extensions: ~2 min on 2 cores, needs g++).
# DIR defaults to $SPEECHKD_FAIRSEQ_REF or ~/.cache/speechkd/fairseq-ref (outside the repository). Re-running is a
# no-op (a stamp file) unless the pins below change. Logs go to stderr; stdout is ONE line, the interpreter to use:
#   export FAIRSEQ_PYTHON="$(scripts/install_fairseq_reference.sh)"
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-${SPEECHKD_FAIRSEQ_REF:-${XDG_CACHE_HOME:-$HOME/.cache}/speechkd/fairseq-ref}}"
python="${PYTHON:-python3}"

# environment.md §2b's list, pinned to what pip resolved for it (2026, Python 3.11), transitive deps included.
# torchaudio (in fairseq's install_requires) is left out on purpose: the CPU-only torch has no working torchaudio.
deps=(numpy==2.4.6 Cython==3.3.1 setuptools==84.2.1 wheel==0.48.0 cffi==2.1.1 pycparser==3.12
      hydra-core==1.3.2 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 PyYAML==6.0.4
      regex==2026.11.19 sacrebleu==2.6.0 tabulate==0.10.0 colorama==0.4.6 lxml==6.1.3 portalocker==4.4.2
      tqdm==4.70.1 bitarray==3.12.3 scikit-learn==1.9.1 scipy==1.17.1 joblib==1.6.0 threadpoolctl==3.8.0
      narwhals==2.29.0 cloudpickle==3.1.3 packaging==26.4 sentencepiece==0.2.3 soundfile==0.14.0
      typing_extensions==4.16.0)
fairseq_pin="fairseq-fixed==0.12.3.1"

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
case "$dir/" in "$root/"*) echo "[fairseq-ref] $dir is inside the repository; pick a DIR outside it" >&2; exit 2;; esac
stamp_file="$dir/.speechkd-fairseq-ref"
stamp_value="$(printf '%s\n' torch==2.13.0 "${deps[@]}" "$fairseq_pin" | sha256sum | cut -c1-16)"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_value" ] && [ -x "$dir/bin/python" ]; then
  echo "$dir/bin/python"
  exit 0
fi

start=$SECONDS
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), \
  "the fairseq reference recipe is for Python 3.11, found %s" % sys.version.split()[0]'
[ -x "$dir/bin/python" ] || { echo "[fairseq-ref] creating $dir" >&2; "$python" -m venv "$dir"; }
rm -f "$stamp_file"
pip=("$dir/bin/python" -m pip --disable-pip-version-check -q)
{
  echo "[fairseq-ref] torch==2.13.0 (CPU build) first"
  "${pip[@]}" install torch==2.13.0
  echo "[fairseq-ref] pinned deps (environment.md §2b)"
  "${pip[@]}" install "${deps[@]}"
  echo "[fairseq-ref] $fairseq_pin: --no-deps --no-build-isolation (C++/Cython build, a few minutes)"
  "${pip[@]}" install --no-deps --no-build-isolation "$fairseq_pin"
  # what the tests and bench/ref_fairseq_s2t.py import
  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$dir/bin/python" -c 'import fairseq, torch
from fairseq.models.speech_to_text import s2t_transformer, berard
from fairseq.sequence_generator import SequenceGenerator
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss
print("[fairseq-ref] fairseq", fairseq.__version__, "torch", torch.__version__)'
} 1>&2
echo "$stamp_value" > "$stamp_file"
echo "[fairseq-ref] done in $((SECONDS - start)) s: FAIRSEQ_PYTHON=$dir/bin/python" >&2
echo "$dir/bin/python"

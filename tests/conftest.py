"""The suite's three folders: unit/ (one module, seconds), parity/ (against fixtures that fairseq-fixed and
transformers produced, or those references live), pipeline/ (stages, runs and run_all.sh end to end, minutes).
Shared helpers and tiny inputs are in support/; this file's folder is on sys.path (pytest's rootdir conftest
rule), so tests import them as `support.<module>`."""

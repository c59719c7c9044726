"""`speechkd <stage> --config X.json [--set a.b=v ...]`.

Every stage module exposes `Config` (a dataclass, see config.py) and `run(cfg)`. Stages are imported
only when called, so `speechkd --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from .config import describe, json_schema, load_config, to_dict
from .errors import InputError

# name -> (module, one-line help). Order = the order a pipeline runs them.
# Each command's module is stages/<command>.py, dashes as underscores: it defines Config and run(cfg).
# No module outside stages/ defines both (tests/pipeline/test_runs_and_cli.py checks it both ways).
STAGES: dict[str, tuple[str, str]] = {
    "synth": ("speechkd.stages.synth", "generate the embedded corpora (TTS, grammars, far-field copy)"),
    "slu-units": ("speechkd.stages.slu_units", "SLU: wav -> units (vq-wav2vec or k-means) + the seed's manifests"),
    "slu-mlm-pretrain": ("speechkd.stages.slu_mlm_pretrain", "SLU: MLM pre-training of a small VQ-BERT / text RoBERTa"),
    "slu-text-finetune": ("speechkd.stages.slu_text_finetune", "SLU: the text teacher (RoBERTa <s> -> Linear)"),
    "slu-pt-kd": ("speechkd.stages.slu_pt_kd", "SLU: PT-KD, VQ-BERT span MLM + <s> matched to the text RoBERTa's"),
    "slu-am-pretrain": ("speechkd.stages.slu_am_pretrain", "SLU: AM-PT, DS2 + character CTC on the frozen VQ-BERT"),
    "slu-finetune": ("speechkd.stages.slu_finetune", "SLU: VQ-BERT -> DS2 -> intent; FT-KD, AM-PT, DA, 10 % subset"),
    "slu-infer": ("speechkd.stages.slu_infer", "SLU: classify wav files with a saved slu-finetune run"),
    "st-prep": ("speechkd.stages.st_prep", "ST: fbank80.zip + S2T TSVs with src_text, Moses text, the expert's BPE"),
    "st-train": ("speechkd.stages.st_train", "ST: train ASR (asr), the NMT expert (nmt) or an ST student (st)"),
    "st-generate": ("speechkd.stages.st_generate", "ST: beam search (checkpoint averaging) -> hypotheses + fairseq logs"),
    "st-score": ("speechkd.stages.st_score", "ST: detokenised sacreBLEU / chrF++ / TER, or WER, of generated logs"),
    "st-eval": ("speechkd.stages.st_eval", "ST: st-generate + st-score on dev and test (the table runs)"),
    "st-synthetic": ("speechkd.stages.st_synthetic", "ST: ASR transcripts (+ expert translations) -> synthetic dataset"),
    "st-translate": ("speechkd.stages.st_translate", "ST: translate new audio files with a trained run or a fairseq "
                     "S2T checkpoint dir"),
    "export": ("speechkd.stages.export", "trained models -> fairseq checkpoint / Hugging Face model directories"),
    "report": ("speechkd.stages.report", "paper tables (Markdown, CSV, LaTeX), plots and report.md of a profile"),
    "preflight": ("speechkd.stages.preflight", "paper profile: check that every corpus and checkpoint is under data_root"),
}
# inference commands: their positional arguments are `--set <option>=[FILE, ...]` (what to classify / translate)
POSITIONAL: dict[str, str] = {"slu-infer": "wavs", "st-translate": "inputs"}


def _stage_module(name: str):
    return importlib.import_module(STAGES[name][0])


_JOINED_PROCESS_GROUP = False


def _leave_process_group() -> None:
    """Under torchrun: destroy the process group once the run is over (all ranks there, or one failed)."""
    global _JOINED_PROCESS_GROUP
    distributed = sys.modules.get("speechkd.train.distributed")
    if distributed is not None and distributed.is_initialized():
        _JOINED_PROCESS_GROUP = True
        distributed.cleanup()


def _exit_code(code: int) -> int:
    """A process that joined a torchrun process group ends with os._exit once its outputs are flushed: left to
    the interpreter's shutdown, the C++ threads of gloo can abort a finished run ("terminate called without an
    active exception", exit -6) after its DONE was written. Every file of the run is closed by then."""
    if _JOINED_PROCESS_GROUP:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
    return code


def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("speechkd")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechkd", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Knowledge distillation for speech: every stage runs from a JSON config.",
        epilog="`speechkd <stage> --help` lists every option of that stage's config.")
    parser.add_argument("--version", action="version", version=f"speechkd {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="<stage>")
    for name, (_, help_text) in STAGES.items():
        p = sub.add_parser(name, help=help_text.replace("%", "%%"), add_help=False)  # argparse formats help
        _add_stage_args(p)
        if name in POSITIONAL:
            p.add_argument("files", nargs="*", metavar="FILE", help=f"sets the {POSITIONAL[name]} option")
    p = sub.add_parser("schema", help="write the JSON Schema of every stage config")
    p.add_argument("--out", default="configs/schemas", help="directory for <stage>.schema.json files")
    from .pipeline import __doc__ as pipeline_doc, add_arguments as pipeline_arguments
    p = sub.add_parser("pipeline", help="every run of a method and profile, in dependency order (run_all.sh)",
                       description=pipeline_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    pipeline_arguments(p)
    p = sub.add_parser("part", help="print a part of the paper profile (--only) as shell assignments (run_all.sh)")
    p.add_argument("name", nargs="?", default="", help="a part of manifests/paper_inputs.json ('' = everything)")
    return parser


def _add_stage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-h", "--help", action="store_true", help="show this stage's options and exit")
    p.add_argument("--config", help="JSON config file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted path; value parsed as JSON, else a string)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def _stage_help(name: str) -> str:
    module = _stage_module(name)
    doc = (module.__doc__ or "").strip()
    files = " [FILE ...]" if name in POSITIONAL else ""
    return (f"usage: speechkd {name}{files} [--config X.json] [--set KEY=VALUE ...] [--print-config]\n\n"
            f"{STAGES[name][1]}\n\n{doc}\n\nconfig options (JSON keys; nested sections use dots with --set):\n"
            + "\n".join(describe(module.Config)))


def write_schemas(out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in STAGES:
        path = out / f"{name}.schema.json"
        schema = json_schema(_stage_module(name).Config, title=f"speechkd {name} config")
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    return _exit_code(_main(argv))


def _main(argv: list[str] | None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "pipeline":
            from .pipeline import main as pipeline_main
            return pipeline_main(args)
        if args.command == "part":
            from .stages.preflight import shell_selection
            print(shell_selection(args.name))
            return 0
        if args.command == "schema":
            for path in write_schemas(args.out):
                print(path)
            return 0
        if args.help:
            print(_stage_help(args.command))
            return 0
        module = _stage_module(args.command)
        files = getattr(args, "files", None)
        overrides = [*args.set, f"{POSITIONAL[args.command]}={json.dumps(files)}"] if files else args.set
        cfg = load_config(module.Config, args.config, overrides)
        if args.print_config:
            print(json.dumps(to_dict(cfg), indent=2))
            return 0
        try:
            module.run(cfg)
        finally:
            _leave_process_group()
        return 0
    except InputError as e:
        print(f"speechkd: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("speechkd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

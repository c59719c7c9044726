"""Write a tiny data root in the real published layouts, for the paper-profile smoke (tests/pipeline/test_paper_smoke.py).

    .venv/bin/python tests/support/make_root.py DIR

Every corpus is laid out as its release ships it (docs/data_and_checkpoints.md says where each goes) and every
checkpoint as the released file stores it, so that `./run_all.sh --profile paper --data-root DIR --scale smoke`
goes through the same readers and loaders a real user's files do:
- FSC v1.0: data/{train,valid,test}_data.csv with FSC's header, wavs/speakers/<speaker>/<uuid>.wav;
- SNIPS and SmartLights close/far: {train,valid,test}.csv (the seed's format) + intent_dict, as the docs ask;
- LibriSpeech: LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac + .trans.txt;
- MuST-C v1.0 en-de: data/<split>/wav/ted_<talk>.wav (whole talks) + txt/<split>.{yaml,en,de} (segments with
  offsets into the talk);
- Common Voice 4 + CoVoST 2: en/validated.tsv, en/clips/*.mp3 (48 kHz mono MPEG layer III, as Common Voice ships),
  en/covost_v2.en_de.tsv;
- checkpoints as fairseq 0.6-0.10 wrote them (`args` Namespace, no `cfg`, numpy objects in the bookkeeping;
  tests/support/released_checkpoints.py): vq-wav2vec_kmeans.pt and the WMT19 model1.pt carry weights fairseq itself
  trained (tests/fixtures/fairseq), bert_kmeans.pt and roberta.base/model.pt tiny random RoBERTas in fairseq 0.9
  naming (emb_layer_norm, decoder.*, q/k/v stacked in in_proj_*), roberta.base with GPT-2 encoder.json/vocab.bpe.
Audio is tones and noise: the smoke proves that every stage runs and every table cell fills, not that models learn.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from support.released_checkpoints import write_released_checkpoint  # noqa: E402

from speechkd.models.roberta import RobertaConfig, RobertaModel  # noqa: E402
from speechkd.tokenizers.gpt2_bpe import bytes_to_unicode  # noqa: E402

FIXTURES = HERE.parent / "fixtures" / "fairseq"
SR = 16000
FSC_HEADER = ",path,speakerId,transcription,action,object,location"


def tone(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = rng.uniform(120, 400, size=3)
    wave = sum(np.sin(2 * np.pi * fi * t) for fi in f) / 6 + rng.normal(0, 0.02, size=t.shape)
    return wave.astype(np.float32)


def write_wav(path: Path, wave: np.ndarray, sr: int = SR, fmt: str = "WAV", subtype: str | None = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, sr, format=fmt, subtype=subtype)


# ------------------------------------------------------------------------------------------------------- SLU

FSC_INTENTS = [("activate", "lights", "kitchen", "Turn on the kitchen lights"),
               ("deactivate", "lights", "none", "Switch off the lights"),
               ("increase", "volume", "none", "Turn up the volume"),
               ("decrease", "heat", "bedroom", "Make the bedroom cooler"),
               ("bring", "shoes", "none", "Bring me my shoes"),
               ("change language", "Chinese", "none", "Switch the language to Chinese")]


def fsc(root: Path) -> None:
    """FSC v1.0: two train speakers, one valid, one test; each says every intent once."""
    speakers = {"train": ["2BqVo8kVB2Skwgyb", "4aGjX3AG5xcxeL7a"], "valid": ["52XVOeXMXYuaElyw"],
                "test": ["8e5qRjN7dGuovkRY"]}
    seed = 0
    for split, spks in speakers.items():
        lines = [FSC_HEADER]
        for spk in spks:
            for action, obj, loc, text in FSC_INTENTS:
                seed += 1
                rel = f"wavs/speakers/{spk}/{uuid.UUID(int=seed)}.wav"
                write_wav(root / "fsc" / rel, tone(1.0 + 0.1 * (seed % 4), seed))
                lines.append(f"{len(lines) - 1},{rel},{spk},{text},{action},{obj},{loc}")
        (root / "fsc" / "data").mkdir(parents=True, exist_ok=True)
        (root / "fsc" / "data" / f"{split}_data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    test_rows = (root / "fsc" / "data" / "test_data.csv").read_text().splitlines()[1:4]
    (root / "fsc" / "infer_wavs.txt").write_text("".join(f"fsc/{r.split(',')[1]}\n" for r in test_rows))


def seed_format_corpus(directory: Path, intents: list[tuple[str, str]], seed: int) -> None:
    """SNIPS / SmartLights as the docs ask: {split}.csv without a header (index,wav,speaker,action,object,location,
    transcript; wav relative to the CSV) + intent_dict; single-label intents are `<intent>,none,none`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "intent_dict").write_text("".join(f"{i} none none\n" for i, _ in intents))
    for split, spks in (("train", ["s1", "s2"]), ("valid", ["s3"]), ("test", ["s4"])):
        rows = []
        for spk in spks:
            for intent, text in intents:
                seed += 1
                rel = f"wavs/{split}_{spk}_{len(rows)}.wav"
                write_wav(directory / rel, tone(1.2, seed))
                rows.append(f"{len(rows)},{rel},{spk},{intent},none,none,{text}")
        (directory / f"{split}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def snips_and_smartlights(root: Path) -> None:
    seed_format_corpus(root / "snips", [("PlayMusic", "play some jazz"), ("GetWeather", "will it rain today"),
                                        ("SetTimer", "set a timer for ten minutes")], seed=1000)
    lights = [("SwitchLightOn", "turn on the lights"), ("SwitchLightOff", "switch the lights off"),
              ("IncreaseBrightness", "brighter please"), ("DecreaseBrightness", "dim the lights"),
              ("SetLightColor", "make the lights blue"), ("SetLightBrightness", "set the lights to fifty")]
    for field, seed in (("close", 2000), ("far", 3000)):
        seed_format_corpus(root / "smartlights" / field, lights, seed)


def librispeech(root: Path) -> None:
    texts = ["THE QUICK BROWN FOX", "JUMPED OVER THE LAZY DOG", "AND RAN INTO THE WOODS"]
    for n, part in enumerate(("train-clean-100", "train-clean-360", "train-other-500", "dev-clean")):
        spk, chapter = 19 + n, 198 + n
        chapter_dir = root / "librispeech" / "LibriSpeech" / part / str(spk) / str(chapter)
        lines = []
        for i, text in enumerate(texts):
            utt = f"{spk}-{chapter}-{i:04d}"
            write_wav(chapter_dir / f"{utt}.flac", tone(1.5, 100 * n + i), fmt="FLAC", subtype="PCM_16")
            lines.append(f"{utt} {text}")
        (chapter_dir / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")


# -------------------------------------------------------------------------------------------------------- ST

ST_PAIRS = [("the house is small", "das Haus ist klein"), ("a dog sees the cat", "ein Hund sieht die Katze"),
            ("we read a good book", "wir lesen ein gutes Buch"), ("the child sleeps", "das Kind schläft"),
            ("my friend drinks coffee", "mein Freund trinkt Kaffee"), ("the weather is cold", "das Wetter ist kalt")]


def mustc(root: Path) -> None:
    """MuST-C v1.0 en-de: per split whole-talk wavs and the segment list (offsets/durations into the talk)."""
    talks = {"train": [767, 768], "dev": [769], "tst-COMMON": [770]}
    for split, ids in talks.items():
        base = root / "mustc" / "en-de" / "data" / split
        yaml, en, de = [], [], []
        for talk in ids:
            segments = [(0.5 + 1.6 * k, 1.3) for k in range(3)]
            write_wav(base / "wav" / f"ted_{talk}.wav", tone(0.5 + 1.6 * len(segments) + 0.5, talk))
            for k, (offset, duration) in enumerate(segments):
                src, tgt = ST_PAIRS[(talk + k) % len(ST_PAIRS)]
                yaml.append(f"- {{duration: {duration:.6f}, offset: {offset:.6f}, rW: {len(src.split())}, uW: 0, "
                            f"speaker_id: spk.{talk}, wav: ted_{talk}.wav}}")
                en.append(src)
                de.append(tgt)
        (base / "txt").mkdir(parents=True, exist_ok=True)
        for suffix, lines in (("yaml", yaml), ("en", en), ("de", de)):
            (base / "txt" / f"{split}.{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")


def covost2(root: Path) -> None:
    """Common Voice 4 (validated.tsv + 48 kHz mp3 clips) and CoVoST 2's en_de table (path, sentence,
    translation, client_id, split)."""
    base = root / "covost2" / "en"
    validated = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent"]
    covost = ["path\tsentence\ttranslation\tclient_id\tsplit"]
    n = 0
    for split, count in (("train", 6), ("dev", 3), ("test", 3)):
        for _ in range(count):
            src, tgt = ST_PAIRS[n % len(ST_PAIRS)]
            clip, client = f"common_voice_en_{19000 + n}.mp3", f"{n % 4:064x}"
            write_wav(base / "clips" / clip, tone(1.4, 5000 + n, sr=48000), sr=48000, fmt="MP3",
                      subtype="MPEG_LAYER_III")
            validated.append(f"{client}\t{clip}\t{src}\t2\t0\tthirties\tmale\tus")
            covost.append(f"{clip}\t{src}\t{tgt}\t{client}\t{split}")
            n += 1
    (base / "validated.tsv").write_text("\n".join(validated) + "\n", encoding="utf-8")
    (base / "covost_v2.en_de.tsv").write_text("\n".join(covost) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------ checkpoints

def _fixture(name: str) -> dict:
    return torch.load(FIXTURES / name, map_location="cpu", weights_only=False)


def vq_wav2vec(root: Path) -> None:
    """The fairseq-trained k-means vq-wav2vec fixture, its hydra model config turned into the `args` of 2019."""
    state = _fixture("vq_wav2vec_kmeans.pt")
    model_args = {k: v for k, v in state["cfg"]["model"].items() if k != "_name"}
    args = argparse.Namespace(arch="wav2vec", task="audio_pretraining", criterion="wav2vec",
                              sample_rate=SR, max_sample_size=150000, **model_args)
    write_released_checkpoint(root / "checkpoints" / "vq-wav2vec_kmeans.pt", state["model"], args)


def fairseq09_roberta_state(model: RobertaModel) -> dict[str, torch.Tensor]:
    """Our (fairseq 0.12) RoBERTa names -> fairseq 0.9's: decoder.*, emb_layer_norm, q/k/v stacked in in_proj_*."""
    out: dict[str, torch.Tensor] = {}
    params = model.state_dict()
    for name, value in params.items():
        if ".self_attn.k_proj." in name or ".self_attn.v_proj." in name:
            continue
        if ".self_attn.q_proj." in name:
            kind = name.rsplit(".", 1)[1]
            prefix = name.split(".self_attn.q_proj.")[0] + ".self_attn."
            value = torch.cat([params[f"{prefix}{p}_proj.{kind}"] for p in ("q", "k", "v")])
            name = f"{prefix}in_proj_{kind}"
        name = name.replace(".layernorm_embedding.", ".emb_layer_norm.")
        out["decoder." + name[len("encoder."):] if name.startswith("encoder.") else name] = value.clone()
    return out


def roberta_checkpoint(path: Path, dict_symbols: list[str], seed: int, task: str) -> None:
    torch.manual_seed(seed)
    cfg = RobertaConfig(layers=2, embed_dim=32, heads=2, ffn_dim=64, max_positions=512)
    model = RobertaModel(cfg, vocab_size=4 + len(dict_symbols) + 1)  # specials + dict.txt + <mask>
    args = argparse.Namespace(arch="roberta_base", task=task, criterion="masked_lm", encoder_layers=2,
                              encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2,
                              max_positions=512, dropout=0.1, attention_dropout=0.1, activation_dropout=0.0,
                              pooler_dropout=0.0, activation_fn="gelu", pooler_activation_fn="tanh",
                              encoder_normalize_before=False, tokens_per_sample=512, sample_break_mode="complete")
    write_released_checkpoint(path, fairseq09_roberta_state(model), args)
    (path.parent / "dict.txt").write_text("".join(f"{s} {1000 - i}\n" for i, s in enumerate(dict_symbols)))


def bert_kmeans(root: Path) -> None:
    """VQ-BERT over the vq-wav2vec's "a-b" units (2 groups of 16 codes)."""
    units = [f"{a}-{b}" for a in range(16) for b in range(16)]
    roberta_checkpoint(root / "checkpoints" / "bert_kmeans" / "bert_kmeans.pt", units, seed=1, task="masked_lm")


def roberta_base(root: Path) -> None:
    """roberta.base with a GPT-2 byte-level BPE of 256 bytes + 3 merges; dict.txt lists GPT-2 ids, as released."""
    byte_tokens = list(bytes_to_unicode().values())
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    encoder = {tok: i for i, tok in enumerate(byte_tokens + [a + b for a, b in merges])}
    bpe_dir = root / "checkpoints" / "gpt2_bpe"
    bpe_dir.mkdir(parents=True, exist_ok=True)
    (bpe_dir / "encoder.json").write_text(json.dumps(encoder, ensure_ascii=False))
    (bpe_dir / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                                       encoding="utf-8")
    roberta_checkpoint(root / "checkpoints" / "roberta.base" / "model.pt", [str(i) for i in encoder.values()],
                       seed=2, task="masked_lm")


def wmt19(root: Path) -> None:
    """The fairseq-trained old-format NMT fixture (joined dictionary, shared embeddings) under WMT19's file names
    and arch name; its sizes are explicit in args, as every argument is in the released model1.pt."""
    state = _fixture("transformer_nmt_oldformat.pt")
    args = state["args"]
    args.arch = "transformer_wmt_en_de_big"
    out = root / "wmt19.en-de.joined-dict.ensemble"
    write_released_checkpoint(out / "model1.pt", state["model"], args)
    shutil.copy(FIXTURES / "nmt_dict.en.txt", out / "dict.en.txt")
    shutil.copy(FIXTURES / "nmt_dict.de.txt", out / "dict.de.txt")
    shutil.copy(FIXTURES / "nmt_bpecodes", out / "bpecodes")


def make_root(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for write in (fsc, snips_and_smartlights, librispeech, mustc, covost2, vq_wav2vec, bert_kmeans, roberta_base,
                  wmt19):
        write(root)
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="directory to write the data root to")
    print(make_root(parser.parse_args().root))

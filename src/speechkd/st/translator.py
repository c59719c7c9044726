"""Translate (or transcribe) new recordings: the core of `speechkd st-translate` and speechkd.api.load_st.

The model is a finished st-train run of this project (task st; asr -> transcripts; a cascade's NMT run: its ASR
transcribes, it translates, as st-generate decodes cascades) or an imported fairseq S2T checkpoint directory: the
checkpoint .pt, the data config its recipe trained with (config.yaml) and the dictionary and sentencepiece / BPE
model that config names, as fairseq's S2T recipes and S2THubInterface ship them.

- Features: what st-prep stores in fbank80.zip for the same file (data/audio.py read_audio and its checks, then
  features/fbank.py), normalised as the model was trained (the run's data.cmvn with its prep run's gcmvn.npz; a
  config.yaml's eval transforms). Resampling and mp3 are accepted where the model's st-prep accepted them (the
  covost2 reader: Common Voice ships 48 kHz mp3), elsewhere only when asked for.
- Decoding: decoding.decode_batches, the search st-generate runs, in batches of up to max_tokens feature frames,
  longest first; a batch's files are read and featurised when it is decoded and only its text is kept, so the
  audio and features in memory are one batch's however many files there are. Settings: those of the st-eval
  (else st-generate) run that decoded the run for its table, each overridable; fairseq's defaults for a
  checkpoint directory.
- Output: the text st-score scores: BPE removed (fastBPE "@@ ", sentencepiece), then Moses-detokenised where the
  model's text is Moses-tokenised (our runs, and fastBPE / Moses checkpoint directories: the fork's recipe).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..data.audio import check_audio, input_wave, read_audio
from ..data.batching import collate_features
from ..errors import InputError
from ..features.fbank import fbank, num_frames
from ..interop.fairseq_generate import GenerateHypothesis, GenerateRecord
from ..runs import require_file, run_config
from ..tokenizers.bpe import BPE
from ..tokenizers.dictionary import Dictionary, remove_bpe
from ..tokenizers.moses import detokenize
from .data import SpeechDataset, TextDataset
from .decoding import GenerationConfig, decode_batches, is_cascade, model_data, pick_device
from .models import load_trained_model
from .vocab import CODES_FILE

SAMPLE_RATE = 16000
SEARCH_FIELDS = ("checkpoint", "beam", "max_len_a", "max_len_b", "lenpen", "max_tokens")


@dataclasses.dataclass
class Options:
    """What a caller may set; None / "" = the model's own setting."""
    checkpoint: str | None = None  # run: best, last, average_last_N; checkpoint directory: the .pt file's name
    beam: int | None = None
    max_len_a: float | None = None
    max_len_b: int | None = None
    lenpen: float | None = None
    max_tokens: int | None = None
    lang: str = ""                 # language of the Moses detokenisation
    resample: bool | None = None   # other sample rates (default: where the model's st-prep resampled)
    allow_mp3: bool | None = None  # mp3 files (default: where the model's st-prep read mp3)
    device: str = "auto"


@dataclasses.dataclass
class AudioRecipe:
    """How a new recording becomes the model's input, as its training features were made."""
    normalize: Callable[[np.ndarray], np.ndarray] | None
    resample: bool = False
    allow_mp3: bool = False
    min_frames: int = 5                # st-prep's filter (fairseq recipes: 5)
    max_frames: int | None = None      # the encoder's max_source_positions

    def file_frames(self, path: Path) -> int:
        """Feature frames of a file from its header (checked as read_audio checks it), before reading it."""
        info = check_audio(path, SAMPLE_RATE, self.resample, allow_mp3=self.allow_mp3)
        return self.check_frames(str(path), round(info.frames * SAMPLE_RATE / info.samplerate))

    def check_frames(self, name: str, samples: int) -> int:
        frames = num_frames(samples)
        seconds = samples / SAMPLE_RATE
        if frames < self.min_frames:
            raise InputError(f"{name}: {seconds:.2f} s of audio is {frames} feature frames, the model needs at least "
                             f"{self.min_frames} (st-prep drops shorter utterances)")
        if self.max_frames is not None and frames > self.max_frames:
            raise InputError(f"{name}: {seconds:.1f} s of audio is {frames} feature frames, the model takes at most "
                             f"{self.max_frames} (about {self.max_frames / 100:.0f} s); split the recording into "
                             "shorter utterances")
        return frames

    def read(self, path: Path) -> np.ndarray:
        return read_audio(path, SAMPLE_RATE, self.resample, allow_mp3=self.allow_mp3)

    def features(self, wave: np.ndarray) -> np.ndarray:
        x = fbank(wave)
        return self.normalize(x) if self.normalize is not None else x


class AudioBatches:
    """Waves or audio files as decode_dataset's dataset: `lengths` in feature frames (from the headers for files,
    every file checked here, before any decoding), `collate` reads and featurises one batch."""

    def __init__(self, items: Sequence[Any], recipe: AudioRecipe, sample_rate: int):
        self.recipe, self.bar = recipe, None  # bar: a tqdm bar counting the files read
        self.items: list[Path | np.ndarray] = []
        lengths = []
        for k, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                item = Path(item)
                lengths.append(recipe.file_frames(item))
            else:
                item = input_wave(item, sample_rate, SAMPLE_RATE, name=f"waves[{k}]")
                lengths.append(recipe.check_frames(f"waves[{k}]", len(item)))
            self.items.append(item)
        self.lengths = np.array(lengths, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def features(self, i: int) -> np.ndarray:
        item = self.items[i]
        return self.recipe.features(self.recipe.read(item) if isinstance(item, Path) else item)

    def collate(self, indices: Sequence[int]) -> dict:
        feats = [self.features(i) for i in indices]
        order = sorted(range(len(indices)), key=lambda k: -feats[k].shape[0])  # longest first, as SpeechDataset
        source, lengths = collate_features([feats[k] for k in order])
        if self.bar is not None:
            self.bar.update(len(indices))
        return {"index": torch.tensor([indices[k] for k in order], dtype=torch.long), "source": source,
                "source_lengths": lengths}


@dataclasses.dataclass
class Hypothesis:
    text: str                       # detokenised: what st-translate prints
    pieces: str                     # the dictionary string (a fairseq-generate log's H- line)
    score: float                    # natural-log score, normalised by length ** lenpen
    positional_scores: list[float]  # natural-log, per token
    source: str | None = None       # a cascade: the ASR transcript its NMT model translated

    def record(self, sample_id: int) -> GenerateRecord:
        """As a fairseq-generate log entry (base-2 scores); D- is the detokenised text."""
        ln2 = math.log(2)
        hyp = GenerateHypothesis(self.score / ln2, self.pieces, self.text, [s / ln2 for s in self.positional_scores])
        return GenerateRecord(sample_id, self.source, None, [hyp])


class Translator:
    """A loaded model with its features, search and post-processing; `translate` may be called many times."""

    def __init__(self, model: torch.nn.Module, dictionary: Dictionary, generation: GenerationConfig,
                 recipe: AudioRecipe, bpe_symbol: str | None, detok_lang: str | None, name: str, task: str,
                 asr: "Translator | None" = None, source_bpe: BPE | None = None, settings_from: str = ""):
        self.device = pick_device(generation.device)
        self.model = model.to(self.device).eval()
        self.dictionary, self.generation, self.recipe = dictionary, generation, recipe
        self.bpe_symbol, self.detok_lang, self.name, self.task = bpe_symbol, detok_lang, name, task
        self.asr, self.source_bpe = asr, source_bpe  # a cascade: its ASR and the NMT model's BPE
        self.settings_from = settings_from  # the evaluation run whose search settings are the defaults

    def translate(self, waves_or_paths: Any, sample_rate: int = SAMPLE_RATE) -> list[str]:
        """Detokenised translations (transcripts for an ASR model), one per input, in input order. Inputs: audio
        file paths and/or 1-D float waves at `sample_rate` Hz."""
        return [h.text for h in self.hypotheses(waves_or_paths, sample_rate)]

    def hypotheses(self, waves_or_paths: Any, sample_rate: int = SAMPLE_RATE, progress: bool = False
                   ) -> list[Hypothesis]:
        items = [waves_or_paths] if isinstance(waves_or_paths, (str, os.PathLike, np.ndarray)) \
            else list(waves_or_paths)
        if not items:
            return []
        if self.asr is not None:
            heard = self.asr.hypotheses(items, sample_rate, progress)
            transcripts = [remove_bpe(h.pieces, "@@ ") for h in heard]  # Moses-tokenised, as the NMT part reads
            text = TextDataset([self.source_bpe.apply(t) for t in transcripts], None, self.dictionary,
                               name="ASR transcripts")
            out = self.decode(text)
            for hyp, transcript in zip(out, transcripts):
                hyp.source = transcript
            return out
        audio = AudioBatches(items, self.recipe, sample_rate)  # every input checked before any decoding
        if not progress:
            return self.decode(audio)
        from tqdm import tqdm
        with tqdm(total=len(items), unit="file", desc=self.task, file=sys.stderr, leave=False) as bar:
            audio.bar = bar
            return self.decode(audio)

    def decode(self, dataset: Any) -> list[Hypothesis]:
        """The best hypothesis of every item of a decode_dataset dataset (lengths, collate), in item order."""
        out: list[Hypothesis | None] = [None] * len(dataset)
        for decoded in decode_batches(self.model, dataset, self.dictionary, self.generation, self.device):
            for d in decoded:  # kept as text and lists: the batch's tensors go with it
                pieces = self.dictionary.string(d.tokens)
                out[d.index] = Hypothesis(self.postprocess(pieces), pieces, d.score, d.positional_scores.tolist())
        return out  # type: ignore[return-value]

    def postprocess(self, pieces: str) -> str:
        text = remove_bpe(pieces, self.bpe_symbol) if self.bpe_symbol else pieces
        return detokenize(text, self.detok_lang) if self.detok_lang else text

    def describe(self) -> str:
        g = self.generation
        where = f" (as {self.settings_from})" if self.settings_from else ""
        return (f"{self.name} ({self.task}): checkpoint {g.checkpoint}, beam {g.beam}, lenpen {g.lenpen}, max_len "
                f"{g.max_len_a}·frames + {g.max_len_b}, max_tokens {g.max_tokens}{where}, on {self.device}")


# --------------------------------------------------------------------------------------------- loading

def generation_config(settings: dict, options: Options) -> GenerationConfig:
    """GenerationConfig's defaults, then `settings` (an evaluation run's), then what the caller set."""
    values = dataclasses.asdict(GenerationConfig())
    values.update({k: v for k, v in settings.items() if k in SEARCH_FIELDS})
    values.update({k: getattr(options, k) for k in SEARCH_FIELDS if getattr(options, k) is not None})
    values["device"] = options.device
    try:
        return GenerationConfig(**values)
    except ValueError as e:
        raise InputError(str(e)) from None


def evaluation_settings(where: Any, run: str) -> tuple[dict, str]:
    """The generation section of the finished st-eval (else st-generate) run of `where`'s profile that decoded
    `run` (the one named <run>_eval first): what the run's table numbers were measured with. ({}, "") if none."""
    found = []
    for path in sorted((Path(where.runs_dir) / where.profile).glob("*/config.json")):
        if not (path.parent / "DONE").is_file():
            continue
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        stage, cfg = saved.get("stage"), saved.get("config", {})
        if stage in ("st-eval", "st-generate") and cfg.get("model_run") == run:
            name = path.parent.name
            found.append((stage != "st-eval", name != f"{run}_eval", name, cfg.get("generation", {})))
    if not found:
        return {}, ""
    _, _, name, settings = min(found)
    return settings, name


def _run_recipe(model: Any, options: Options) -> AudioRecipe:
    data = model_data(model)
    gcmvn = model.prep_dir / "gcmvn.npz" if data.cmvn == "global" else None
    prep = run_config(model.prep_dir.parent).get("config", {})
    covost = prep.get("corpus") == "covost2"  # the corpus whose reader resamples and decodes mp3
    return AudioRecipe(SpeechDataset._normalizer(data.cmvn, gcmvn),
                       covost if options.resample is None else options.resample,
                       covost if options.allow_mp3 is None else options.allow_mp3,
                       int(prep.get("min_frames", 5)), _max_frames(model.model))


def _max_frames(model: torch.nn.Module) -> int | None:
    return getattr(getattr(model, "cfg", None), "max_source_positions", None)


def load_run(where: Any, run: str, options: Options, field: str = "run") -> Translator:
    """A finished st-train run of `where` (anything with runs_dir and profile: a config, api.RunLocation)."""
    settings, source = evaluation_settings(where, run)
    gen = generation_config(settings, options)
    model = load_trained_model(where, run, field, gen.checkpoint)
    data = model_data(model)
    if model.task == "nmt" and not is_cascade(model):
        raise InputError(f"{field}: run '{run}' is an NMT model that reads text; st-translate needs a speech model "
                         "(task st or asr) or a cascade's NMT run (data.source audio)")
    if model.task == "asr":
        return Translator(model.model, model.dictionary, gen, _run_recipe(model, options), "@@ ",
                          options.lang or data.src_lang, run, "asr", settings_from=source)
    asr = bpe = None
    recipe = _run_recipe(model, options) if model.task == "st" else None
    if recipe is None:  # the cascade: its ASR hears the audio, with the same search
        asr_run = model.config.get("criterion", {}).get("asr_run", "")
        heard = load_trained_model(where, asr_run, f"{field} -> criterion.asr_run", gen.checkpoint)
        recipe = _run_recipe(heard, options)
        asr = Translator(heard.model, heard.dictionary, gen, recipe, "@@ ", None, asr_run, "transcribe")
        bpe = BPE.from_codes(require_file(model.prep_dir / CODES_FILE, f"{field} -> data.prep_run", "BPE codes"))
    return Translator(model.model, model.dictionary, gen, recipe, "@@ ", options.lang or data.tgt_lang, run,
                      "cascade" if asr is not None else "st", asr, bpe, source)


def load_checkpoint_dir(directory: str | Path, options: Options) -> Translator:
    """An imported fairseq S2T checkpoint directory: one .pt (or options.checkpoint names it), a data config
    (config.yaml, else the directory's only *.yaml) and the files it names, found as fairseq's S2TDataConfig finds
    them (as written, else in the directory)."""
    from ..interop.fairseq_models import load_fairseq_model
    from ..interop.fairseq_s2t_config import read_s2t_data_config
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"checkpoint_dir: {directory} is not a directory")
    if (directory / "config.json").is_file() and not list(directory.glob("*.pt")):
        return load_hf_dir(directory, options)
    checkpoint = _one_file(directory, options.checkpoint, "*.pt", ("checkpoint_best.pt", "model.pt"), "checkpoint")
    yaml_path = _one_file(directory, None, "*.yaml", ("config.yaml",), "data config")
    cfg = read_s2t_data_config(yaml_path)

    def named(key: str, value: Any) -> Path:
        path = Path(str(value))
        for candidate in (path, directory / path, directory / path.name):
            if candidate.is_file():
                return candidate
        raise InputError(f"{yaml_path}: {key} {value!r}: not found (as written, nor in {directory})")

    for key, fine in (("prepend_tgt_lang_tag", False), ("use_audio_input", False), ("input_channels", 1),
                      ("input_feat_per_channel", 80)):
        if cfg.get(key, fine) != fine:
            raise InputError(f"{yaml_path}: {key}: {cfg[key]!r} is not supported (expected {fine!r}: 80-dim fbank "
                             "input, one target language)")
    dictionary = Dictionary.load(named("vocab_filename", cfg.get("vocab_filename", "dict.txt")))
    bpe = (cfg.get("bpe_tokenizer") or {})
    kind = bpe.get("bpe")
    if kind == "sentencepiece":
        named("bpe_tokenizer.sentencepiece_model", bpe.get("sentencepiece_model", ""))
    elif kind == "fastbpe":
        named("bpe_tokenizer.bpe_codes", bpe.get("bpe_codes", ""))
    elif kind is not None:
        raise InputError(f"{yaml_path}: bpe_tokenizer.bpe: {kind!r} is not supported (sentencepiece, fastbpe, none)")
    pre = cfg.get("pre_tokenizer") or {}
    moses = pre.get("tokenizer") == "moses" or kind == "fastbpe"  # the fork: Moses-tokenised text, fastBPE
    lang = options.lang or pre.get("moses_target_lang") or "de"
    transforms = cfg.get("transforms") or cfg.get("feature_transforms") or {}
    normalize = _eval_normalizer(transforms.get("_eval", transforms.get("*")) or [], cfg, named, yaml_path)
    model, args = load_fairseq_model(checkpoint)
    arch = str(getattr(args, "arch", None) or getattr(args, "_name", ""))
    if not arch.startswith("s2t_"):
        raise InputError(f"{checkpoint}: architecture {arch!r} reads text; expected a speech-to-text model "
                         "(s2t_transformer*, s2t_berard*)")
    rows = model.decoder.embed_tokens.weight.shape[0]
    if rows != len(dictionary):
        raise InputError(f"{checkpoint}: {rows} target embeddings, but the dictionary has {len(dictionary)} symbols")
    recipe = AudioRecipe(normalize, bool(options.resample), bool(options.allow_mp3), 5, _max_frames(model))
    return Translator(model, dictionary, generation_config({}, options), recipe,
                      {"sentencepiece": "sentencepiece", "fastbpe": "@@ "}.get(kind), lang if moses else None,
                      f"{directory.name}/{checkpoint.name}", "st")


def load_hf_dir(directory: Path, options: Options) -> Translator:
    """A Hugging Face Speech2TextForConditionalGeneration directory (config.json + model.safetensors, as
    `speechkd export --set format=hf` writes it or the hub ships it): the ids -> text files are dict.txt +
    bpecodes (fastBPE, Moses-detokenised) or vocab.json + sentencepiece.bpe.model; the features are normalised
    as gcmvn.npz (global CMVN) or preprocessor_config.json's do_ceptral_normalize (utterance CMVN) say."""
    from ..interop.hf_models import load_hf_speech2text, read_hf_config
    model_type = read_hf_config(directory).get("model_type")
    if model_type != "speech_to_text":
        raise InputError(f"checkpoint_dir: {directory / 'config.json'}: model_type {model_type!r}; expected "
                         "speech_to_text (Speech2TextForConditionalGeneration)")
    model = load_hf_speech2text(directory)
    if (directory / "dict.txt").is_file():
        dictionary = Dictionary.load(directory / "dict.txt")
    else:
        dictionary = _dictionary_of_vocab(require_file(directory / "vocab.json", "checkpoint_dir", "vocabulary"))
    rows = model.decoder.embed_tokens.weight.shape[0]
    if rows != len(dictionary):
        raise InputError(f"{directory}: {rows} target embeddings, but the vocabulary has {len(dictionary)} symbols")
    if (directory / CODES_FILE).is_file():
        bpe, lang = "@@ ", options.lang or "de"
    elif (directory / "sentencepiece.bpe.model").is_file():
        bpe, lang = "sentencepiece", None
    else:
        raise InputError(f"checkpoint_dir: {directory}: no {CODES_FILE} (fastBPE) nor sentencepiece.bpe.model")
    if (directory / "gcmvn.npz").is_file():
        normalize = SpeechDataset._normalizer("global", directory / "gcmvn.npz")
    else:
        pre = directory / "preprocessor_config.json"
        extractor = json.loads(pre.read_text(encoding="utf-8")) if pre.is_file() else {}
        normalize = SpeechDataset._normalizer("utterance", None) if extractor.get("do_ceptral_normalize") else None
    recipe = AudioRecipe(normalize, bool(options.resample), bool(options.allow_mp3), 5, _max_frames(model))
    return Translator(model, dictionary, generation_config({}, options), recipe, bpe, lang, directory.name, "st")


def _dictionary_of_vocab(path: Path) -> Dictionary:
    """A Speech2Text tokenizer's vocab.json (symbol -> id, fairseq's four specials first) as a Dictionary."""
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a JSON vocabulary ({e})") from None
    symbols = sorted(vocab, key=vocab.get)
    if symbols[:4] != ["<s>", "<pad>", "</s>", "<unk>"] or [vocab[s] for s in symbols] != list(range(len(vocab))):
        raise InputError(f"{path}: expected ids 0..N-1 with <s> <pad> </s> <unk> first (a fairseq dictionary)")
    dictionary = Dictionary()
    for symbol in symbols[4:]:
        dictionary.add_symbol(symbol)
    return dictionary


def _one_file(directory: Path, name: str | None, pattern: str, preferred: tuple[str, ...], what: str) -> Path:
    if name:
        return require_file(directory / name, "checkpoint", what)
    found = sorted(directory.glob(pattern))
    if len(found) == 1:
        return found[0]
    for p in preferred:
        if (directory / p).is_file():
            return directory / p
    raise InputError(f"checkpoint_dir: {directory}: expected one {pattern} {what} (or {' / '.join(preferred)}), "
                     f"found {', '.join(p.name for p in found) or 'none'}")


def _eval_normalizer(transforms: list, cfg: dict, named: Callable, yaml_path: Path):
    """fairseq's eval feature transforms: utterance_cmvn, global_cmvn (its stats_npz_path) or none."""
    unknown = [t for t in transforms if t not in ("utterance_cmvn", "global_cmvn")]
    if unknown or len(transforms) > 1:
        raise InputError(f"{yaml_path}: transforms {transforms}: expected at most one of utterance_cmvn, global_cmvn "
                         "for evaluation")
    if not transforms:
        return None
    if transforms[0] == "utterance_cmvn":
        return SpeechDataset._normalizer("utterance", None)
    stats = named("global_cmvn.stats_npz_path", (cfg.get("global_cmvn") or {}).get("stats_npz_path", ""))
    return SpeechDataset._normalizer("global", stats)

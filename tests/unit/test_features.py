"""fbank: against an independent numpy implementation of Kaldi's fbank, against kaldi-native-fbank (the reference
whose float32 rounding ours follows; skipped with a reason when it is not installed), plus a golden fixture
(tests/fixtures/fbank_golden_*.npy, made with kaldi-native-fbank 1.23) that catches a change of the features.

Regenerate the fixture (only on purpose, after checking why features changed):
    PYTHONPATH=tests .venv/bin/python tests/unit/test_features.py --regenerate
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from speechkd.errors import InputError
from speechkd.features.cmvn import (GlobalCMVN, UtteranceCMVN, compute_global_cmvn, load_global_cmvn,
                                    save_global_cmvn, utterance_cmvn)
from speechkd.features.fbank import fbank, num_frames
from speechkd.features.kiss_rfft import kiss_rfft
from speechkd.features.specaugment import SpecAugment, specaugment_policy
from support.paths import FIXTURES

FLOAT32_EPS = float(np.finfo(np.float32).eps)


# ---- independent reference, written from Kaldi's feature-window.cc / mel-computations.cc semantics ----

def _kaldi_mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _kaldi_mel_banks(num_bins: int, n_fft: int, sample_rate: int, low_hz: float = 20.0) -> np.ndarray:
    """(num_bins, n_fft // 2 + 1): triangles in the mel domain, strict at both edges; the Nyquist bin unused."""
    mel_low, mel_high = _kaldi_mel(low_hz), _kaldi_mel(sample_rate / 2)
    delta = (mel_high - mel_low) / (num_bins + 1)
    bin_mel = _kaldi_mel(np.arange(n_fft // 2) * sample_rate / n_fft)
    banks = np.zeros((num_bins, n_fft // 2 + 1))
    for b in range(num_bins):
        left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
        rising = (bin_mel - left) / (center - left)
        falling = (right - bin_mel) / (right - center)
        inside = (bin_mel > left) & (bin_mel < right)
        banks[b, :-1] = np.where(inside, np.where(bin_mel <= center, rising, falling), 0.0)
    return banks


def reference_fbank(wave: np.ndarray, sample_rate: int = 16000, num_bins: int = 80) -> np.ndarray:
    x = np.asarray(wave, dtype=np.float64) * 32768.0
    window, shift, n_fft = 400, 160, 512
    n = 0 if len(x) < window else 1 + (len(x) - window) // shift
    frames = np.stack([x[i * shift:i * shift + window] for i in range(n)]) if n else np.zeros((0, window))
    frames = frames - frames.mean(axis=1, keepdims=True)  # remove DC offset
    # pre-emphasis; the first sample is pre-emphasised against itself
    frames = np.concatenate([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], axis=1)
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / (window - 1))) ** 0.85
    spectrum = np.fft.rfft(frames * povey, n=n_fft)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    mel_energies = power @ _kaldi_mel_banks(num_bins, n_fft, sample_rate).T
    return np.log(np.maximum(mel_energies, FLOAT32_EPS))


def _assert_fbank_close(ours: np.ndarray, ref: np.ndarray) -> None:
    """Equal to 1e-3 in every bin within 16 nats (~70 dB) of its frame's peak. Further down, float32 round-off in
    Kaldi's FFT (~1e-8 of the peak power) dominates a pure tone's leakage, so there both sides are clipped at
    peak - 16: a bin the reference puts that far down must be that far down in ours too."""
    assert np.isfinite(ours).all()
    floor = ref.max(axis=1, keepdims=True) - 16.0
    np.testing.assert_allclose(np.maximum(ours, floor), np.maximum(ref, floor), atol=1e-3, rtol=0)
    assert (ref > floor).mean() > 0.15  # the comparison is not vacuous (pure tones leave most bins below)


def golden_wave() -> np.ndarray:
    """0.5 s at 16 kHz: a 100 -> 4000 Hz linear chirp plus noise from a fixed seed, as int16 PCM."""
    t = np.arange(8000) / 16000.0
    chirp = 0.3 * np.sin(2 * np.pi * (100.0 * t + 0.5 * (4000.0 - 100.0) / 0.5 * t ** 2))
    noise = 0.01 * np.random.default_rng(1234).standard_normal(8000)
    return np.round((chirp + noise) * 32767).astype(np.int16)


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(12345) / 16000.0
    burst = np.zeros(9000)
    burst[3000:5000] = 0.5 * rng.standard_normal(2000)
    return {
        "golden": golden_wave() / 32768.0,
        "sine": 0.5 * np.sin(2 * np.pi * 440.0 * t),
        "noise": 0.05 * rng.standard_normal(16000),
        "dc_plus_tone": 0.2 + 0.1 * np.sin(2 * np.pi * 1234.5 * t),
        "silence_burst": burst,  # exact-zero frames around a burst
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_matches_independent_kaldi_reference(name):
    wave = _signals()[name].astype(np.float32)
    ours = fbank(wave)
    ref = reference_fbank(wave)
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (num_frames(len(wave)), 80)
    _assert_fbank_close(ours, ref)


def test_noise_matches_reference_everywhere():
    wave = _signals()["noise"].astype(np.float32)  # flat spectrum: no bin is near the float32 floor
    np.testing.assert_allclose(fbank(wave), reference_fbank(wave), atol=1e-3, rtol=0)


def test_golden_fixture_unchanged():
    wave = np.load(FIXTURES / "fbank_golden_wave.npy")
    np.testing.assert_array_equal(wave, golden_wave())  # the input itself is pinned too
    expected = np.load(FIXTURES / "fbank_golden_feats.npy")
    assert expected.shape == (48, 80)
    np.testing.assert_allclose(fbank(wave / 32768.0), expected, atol=1e-4, rtol=0)


def test_int16_input_needs_no_scaling():
    wave = golden_wave()
    np.testing.assert_allclose(fbank(wave), fbank(wave / 32768.0), atol=1e-5)


def test_exact_zero_silence_is_floored_not_minus_inf():
    feats = fbank(np.zeros(16000, dtype=np.float32))
    assert np.isfinite(feats).all()
    np.testing.assert_allclose(feats, np.log(FLOAT32_EPS), rtol=1e-6)
    # silence inside speech: the silent frames get the floor, the speech frames do not
    feats = fbank(_signals()["silence_burst"])
    assert np.isfinite(feats).all()
    assert np.allclose(feats[0], np.log(FLOAT32_EPS)) and feats[25].min() > 0


@pytest.mark.parametrize("n,expected", [(0, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16000, 98), (8000, 48)])
def test_num_frames_snip_edges(n, expected):
    assert num_frames(n) == expected
    assert fbank(np.zeros(n, dtype=np.float32)).shape == (expected, 80)


def test_other_mel_bin_counts_and_rejects_2d():
    wave = _signals()["sine"].astype(np.float32)
    _assert_fbank_close(fbank(wave, num_mel_bins=40), reference_fbank(wave, num_bins=40))
    with pytest.raises(ValueError, match="1-D"):
        fbank(np.zeros((2, 800), dtype=np.float32))



def test_frames_do_not_depend_on_their_block():
    """Frames are computed in blocks (CHUNK_FRAMES) and a lone frame takes its own code path: each frame equals
    the same frame computed from just its own samples, around block boundaries too. A DC-heavy 44.1 kHz wave makes
    the DC sum's rounding visible in the low bins."""
    rng = np.random.default_rng(3)
    for sr, bins, n_frames in [(16000, 80, 1030), (44100, 128, 5)]:
        window, shift = int(sr * 0.025), int(sr * 0.01)
        wave = (0.3 + 0.05 * rng.standard_normal(window + (n_frames - 1) * shift)).astype(np.float32)
        feats = fbank(wave, sr, bins)
        for i in sorted({0, 1, n_frames - 1, *[j for j in (511, 512, 513, 1023, 1024) if j < n_frames]}):
            alone = fbank(wave[i * shift:i * shift + window], sr, bins)
            np.testing.assert_allclose(alone[0], feats[i], atol=1e-5, rtol=0)


def test_long_wave_memory_stays_bounded():
    import tracemalloc
    wave = np.zeros(16000 * 300, dtype=np.float64)  # 5 minutes; a whole-wave float32 copy alone would be 19 MB
    wave[::7] = 0.1
    tracemalloc.start()
    try:
        feats = fbank(wave)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert feats.shape == (num_frames(len(wave)), 80)
    assert peak - feats.nbytes < 16 * 2 ** 20  # the blocks' buffers, not the whole wave's frames (~100s of MB)


def test_bad_settings_rejected():
    wave = np.zeros(16000, dtype=np.float32)
    with pytest.raises(ValueError, match="at least 3 mel bins"):
        fbank(wave, num_mel_bins=2)
    with pytest.raises(ValueError, match="too large"):
        fbank(wave, num_mel_bins=128)  # at 16 kHz with FFT 512, some of 128 banks would get no FFT bin
    with pytest.raises(ValueError, match="sample rate"):
        fbank(wave, sample_rate=80)


# ---- against kaldi-native-fbank, the extractor these features reproduce ----

@pytest.fixture
def knf():
    return pytest.importorskip("kaldi_native_fbank", reason="kaldi-native-fbank not installed: no reference "
                               "(requirements-test.lock pins it; scripts/install.sh --test)")


def knf_fbank(knf, wave: np.ndarray, sample_rate: int = 16000, num_bins: int = 80) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(sample_rate)
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = num_bins
    opts.mel_opts.low_freq, opts.mel_opts.high_freq = 20.0, 0.0
    samples = np.ascontiguousarray(wave * 32768.0 if wave.dtype.kind == "f" else wave, dtype=np.float32)
    computer = knf.OnlineFbank(opts)
    computer.accept_waveform(float(sample_rate), samples.tolist())
    computer.input_finished()
    frames = [np.array(computer.get_frame(i), dtype=np.float32) for i in range(computer.num_frames_ready)]
    return np.stack(frames) if frames else np.zeros((0, num_bins), np.float32)


def _random_waves(rng, n: int, sample_rate: int) -> dict[str, np.ndarray]:
    t = np.arange(n) / sample_rate
    return {"noise": 0.05 * rng.standard_normal(n), "loud": np.clip(0.7 * rng.standard_normal(n), -1, 1),
            "quiet": 1e-4 * rng.standard_normal(n), "dc": 0.3 + 0.05 * rng.standard_normal(n),
            "tone": 0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.01 * rng.standard_normal(n)}


@pytest.mark.reference
def test_fft_rounds_exactly_like_kaldi_native_fbank(knf):
    rng = np.random.default_rng(0)
    for n in (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048):  # every radix-4/radix-2 mix up to 48 kHz frames
        x = (1000 * rng.standard_normal((n, 5))).astype(np.float32)
        real, imag = kiss_rfft(n)(x)
        packed = np.empty_like(x)  # knf's layout: r0, r_{n/2}, r1, i1, r2, i2, ...
        packed[0], packed[1], packed[2::2], packed[3::2] = real[0], real[n // 2], real[1:n // 2], imag[1:n // 2]
        ref = np.stack([np.array(knf.Rfft(n).compute(x[:, c].tolist()), np.float32) for c in range(5)], axis=1)
        np.testing.assert_array_equal(packed, ref, err_msg=f"n={n}")


@pytest.mark.reference
def test_golden_fixture_is_kaldi_native_fbank_output(knf):
    wave = np.load(FIXTURES / "fbank_golden_wave.npy")
    np.testing.assert_allclose(knf_fbank(knf, wave / 32768.0), np.load(FIXTURES / "fbank_golden_feats.npy"),
                               atol=1e-6, rtol=0)


@pytest.mark.reference
@pytest.mark.parametrize("sample_rate,bins", [(16000, 80), (16000, 40), (16000, 23), (8000, 80), (8000, 40),
                                              (22050, 80), (44100, 128), (48000, 80)])
def test_matches_kaldi_native_fbank(knf, sample_rate, bins):
    rng = np.random.default_rng(sample_rate + bins)
    window, shift = int(sample_rate * 0.025), int(sample_rate * 0.01)
    for n in (window - 1, window, window + shift - 1, window + shift, 5000, 3 * sample_rate + 17):
        for name, wave in _random_waves(rng, n, sample_rate).items():
            ours, ref = fbank(wave.astype(np.float32), sample_rate, bins), knf_fbank(knf, wave.astype(np.float32),
                                                                                   sample_rate, bins)
            assert ours.shape == ref.shape == (num_frames(n, sample_rate), bins), (name, n)
            np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0, err_msg=f"{name}, {n} samples")
    silence = np.zeros(2 * sample_rate, dtype=np.float32)
    np.testing.assert_array_equal(fbank(silence, sample_rate, bins), knf_fbank(knf, silence, sample_rate, bins))
    pcm = np.round(np.clip(0.3 * rng.standard_normal(sample_rate), -1, 1) * 32767).astype(np.int16)
    np.testing.assert_allclose(fbank(pcm, sample_rate, bins), knf_fbank(knf, pcm, sample_rate, bins), atol=1e-4)


@pytest.mark.reference
def test_rejects_what_kaldi_native_fbank_rejects(knf):
    wave = np.zeros(16000, dtype=np.float32) + 0.1
    for bins in (2, 128):
        with pytest.raises(ValueError):
            knf_fbank(knf, wave, 16000, bins)
        with pytest.raises(ValueError):
            fbank(wave, num_mel_bins=bins)
    assert fbank(wave, num_mel_bins=120).shape == knf_fbank(knf, wave, 16000, 120).shape == (98, 120)


# ---- CMVN (fairseq UtteranceCMVN / GlobalCMVN / cal_gcmvn_stats semantics) ----

def _fairseq_utterance_cmvn(x):
    mean = x.mean(axis=0)
    var = (x ** 2).sum(axis=0) / x.shape[0] - mean ** 2
    return (x - mean) / np.sqrt(np.maximum(var, 1e-10))


def test_utterance_cmvn_matches_fairseq_formula():
    x = fbank(golden_wave() / 32768.0)
    out = utterance_cmvn(x)
    np.testing.assert_allclose(out, _fairseq_utterance_cmvn(x.astype(np.float64)), atol=1e-4)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(UtteranceCMVN(norm_vars=False)(x), x - x.mean(axis=0), atol=1e-4)
    constant = utterance_cmvn(np.full((5, 3), 7.0))  # zero variance: the floor keeps it finite
    assert np.isfinite(constant).all() and np.allclose(constant, 0)


def test_global_cmvn_stats_stable_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    # a large offset with a small spread: the E[x^2] - mean^2 formula in float32 loses the variance entirely
    chunks = [1e4 + 0.01 * rng.standard_normal((int(n), 3)) for n in rng.integers(1, 50, size=40)]
    mean, std = compute_global_cmvn(iter(chunks))
    allx = np.concatenate(chunks)
    assert mean.dtype == std.dtype == np.float32
    np.testing.assert_allclose(mean, allx.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(std, allx.std(axis=0), rtol=1e-4)
    _, floored = compute_global_cmvn([np.ones((4, 2))])
    np.testing.assert_allclose(floored, 1e-4)  # sqrt of fairseq's 1e-8 variance floor
    save_global_cmvn(tmp_path / "gcmvn.npz", mean, std)
    with np.load(tmp_path / "gcmvn.npz") as stats:  # fairseq's GlobalCMVN reads exactly these keys
        np.testing.assert_array_equal(stats["mean"], mean)
        np.testing.assert_array_equal(stats["std"], std)
    feats = [fbank(golden_wave() / 32768.0), fbank(_signals()["noise"])]
    save_global_cmvn(tmp_path / "fbank.npz", *compute_global_cmvn(feats))
    norm = GlobalCMVN.from_npz(tmp_path / "fbank.npz")(np.concatenate(feats))
    np.testing.assert_allclose(norm.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(norm.std(axis=0), 1, atol=1e-4)


def test_load_global_cmvn_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_global_cmvn(tmp_path / "none.npz")
    np.savez(tmp_path / "nostd.npz", mean=np.zeros(3))
    with pytest.raises(InputError, match="missing key"):
        load_global_cmvn(tmp_path / "nostd.npz")
    np.savez(tmp_path / "zero.npz", mean=np.zeros(3), std=np.zeros(3))
    with pytest.raises(InputError, match="> 0"):
        load_global_cmvn(tmp_path / "zero.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(InputError, match="not an .npz"):
        load_global_cmvn(tmp_path / "plain.npy")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot read"):
        load_global_cmvn(tmp_path / "junk.npz")
    np.savez(tmp_path / "ok.npz", mean=np.zeros(3), std=np.ones(3))
    with pytest.raises(InputError, match="3 dims, features have 80"):
        load_global_cmvn(tmp_path / "ok.npz", dim=80)


# ---- SpecAugment (fairseq SpecAugmentTransform semantics) ----

def test_policy_values_are_the_fairseq_recipes():
    expected = {"lb": (0, 1, 27, 1, 100, 1.0), "ld": (0, 2, 27, 2, 100, 1.0),
                "sm": (0, 2, 15, 2, 70, 0.2), "ss": (0, 2, 27, 2, 70, 0.2)}
    for name, values in expected.items():
        p = specaugment_policy(name)
        assert (p.time_warp_w, p.freq_mask_n, p.freq_mask_f, p.time_mask_n, p.time_mask_t, p.time_mask_p) == values
        assert p.mask_value is None  # fairseq's from_config_dict default: the spectrogram mean
    assert SpecAugment.from_config_dict(
        {"time_wrap_W": 0, "freq_mask_N": 1, "freq_mask_F": 27, "time_mask_N": 1, "time_mask_T": 100,
         "time_mask_p": 1.0}) == specaugment_policy("lb")
    with pytest.raises(InputError, match="unknown key"):
        SpecAugment.from_config_dict({"freq_mask_n": 1})
    with pytest.raises(InputError, match="policy 'xx'"):
        specaugment_policy("xx")
    with pytest.raises(InputError, match="freq_mask_F"):
        SpecAugment(freq_mask_n=1, freq_mask_f=0)


def _masked_rows_cols(out: np.ndarray, sentinel: float) -> tuple[int, int]:
    hit = out == sentinel
    return int(hit.all(axis=1).sum()), int(hit.all(axis=0).sum())


def test_mask_sizes_within_bounds_and_exclusive_upper_bound():
    x = np.random.default_rng(0).uniform(0, 1, (300, 80)).astype(np.float32)
    aug = specaugment_policy("lb", mask_value=-1.0)
    widths, lengths = [], []
    for seed in range(300):
        out = aug(x, np.random.default_rng(seed))
        rows, cols = _masked_rows_cols(out, -1.0)
        widths.append(cols)
        lengths.append(rows)
    assert max(widths) == 26 and min(widths) == 0  # f ~ U[0, 27)
    assert max(lengths) <= 99 and max(lengths) > 90  # t ~ U[0, 100)
    assert x.min() >= 0  # the input was not modified


def test_time_mask_bounded_by_p_times_length():
    x = np.ones((50, 80), np.float32)
    aug = specaugment_policy("sm", mask_value=0.0)  # T = 70 but p = 0.2: at most floor(50 * 0.2) - 1 = 9 frames
    for seed in range(200):
        rows, _ = _masked_rows_cols(aug(x, np.random.default_rng(seed)), 0.0)
        assert rows <= 2 * 9
    short = np.ones((4, 80), np.float32)  # floor(4 * 0.2) = 0 < 1: no time mask at all
    for seed in range(50):
        assert _masked_rows_cols(aug(short, np.random.default_rng(seed)), 0.0)[0] == 0


def test_deterministic_under_seed_numpy_and_torch():
    x = np.random.default_rng(1).standard_normal((200, 80)).astype(np.float32)
    aug = specaugment_policy("ld")
    np.testing.assert_array_equal(aug(x, np.random.default_rng(5)), aug(x, np.random.default_rng(5)))
    assert not np.array_equal(aug(x, np.random.default_rng(5)), aug(x, np.random.default_rng(6)))
    t = torch.from_numpy(x)
    a = aug(t, torch.Generator().manual_seed(5))
    assert isinstance(a, torch.Tensor) and torch.equal(a, aug(t, torch.Generator().manual_seed(5)))
    assert torch.equal(t, torch.from_numpy(x))  # no in-place change


def test_mask_value_none_is_the_mean_and_narrow_input_is_untouched():
    x = np.random.default_rng(2).uniform(3, 5, (120, 80)).astype(np.float32)
    out = specaugment_policy("lb")(x, np.random.default_rng(0))
    masked = out != x
    assert masked.any() and np.allclose(out[masked], x.mean())
    narrow = x[:, :20]  # fewer channels than freq_mask_F = 27: fairseq returns it as is
    assert specaugment_policy("lb")(narrow, np.random.default_rng(0)) is narrow


def test_time_warp_keeps_shape_and_order_and_agrees_between_numpy_and_torch():
    from speechkd.features.specaugment import _resize_time, _time_warp
    ramp = np.repeat(np.arange(40, dtype=np.float32)[:, None], 3, axis=1)
    for length in (25, 40, 57):
        np.testing.assert_allclose(_resize_time(ramp, length),
                                   _resize_time(torch.from_numpy(ramp), length).numpy(), atol=1e-5)
    warped = _time_warp(ramp, 20, 5)
    assert warped.shape == ramp.shape and (np.diff(warped[:, 0]) >= 0).all()
    assert warped[0, 0] == 0 and 38 < warped[-1, 0] <= 39  # half-pixel centres: ends move by < 1 frame
    assert warped[24, 0] < 20 < warped[26, 0]  # frame 20 moved to about 25
    out = SpecAugment(time_warp_w=5)(ramp, np.random.default_rng(0))
    assert out.shape == ramp.shape

if __name__ == "__main__" and "--regenerate" in sys.argv:
    import kaldi_native_fbank  # the fixture is the reference's output, so that it also pins ours
    FIXTURES.mkdir(exist_ok=True)
    np.save(FIXTURES / "fbank_golden_wave.npy", golden_wave())
    np.save(FIXTURES / "fbank_golden_feats.npy", knf_fbank(kaldi_native_fbank, golden_wave() / 32768.0))
    print("wrote", FIXTURES)

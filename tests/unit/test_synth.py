"""The synthetic RML2016.10a-style generator: layout, normalisation, reproducibility, SNR, modulations."""
import json

import numpy as np
import pytest

from amrlib.data.channel import ChannelConfig
from amrlib.data.dataset import SignalDataset
from amrlib.data.modulation import ModulationConfig, constellation, modulate, rrc_taps
from amrlib.data.synth import RML2016A_CLASSES, synthesize, synthesize_key

FS = 200e3


def _cplx(ds_or_iq):
    iq = ds_or_iq.iq if isinstance(ds_or_iq, SignalDataset) else ds_or_iq
    return iq[:, 0].astype(np.float64) + 1j * iq[:, 1]


def test_classes_order_and_layout():
    assert RML2016A_CLASSES == ["8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16",
                                "QAM64", "QPSK", "WBFM"]
    ds = synthesize(frames_per_key=3, snrs=[-20, 0, 18], seed=1)
    assert isinstance(ds, SignalDataset)
    assert ds.iq.shape == (11 * 3 * 3, 2, 128) and ds.iq.dtype == np.float32
    assert ds.labels.dtype == np.int64 and ds.snrs.dtype == np.int64
    assert ds.classes == RML2016A_CLASSES and ds.snr_values == [-20, 0, 18]
    keys, counts = np.unique(np.stack([ds.labels, ds.snrs]), axis=1, return_counts=True)
    assert keys.shape[1] == 33 and np.all(counts == 3)
    assert np.isfinite(ds.iq).all()
    gen = json.loads(json.dumps(ds.meta["generator"]))
    assert ds.meta["source"] == "synthetic" and ds.meta["format"] == "synthetic"
    assert gen == ds.meta["generator"]
    assert gen["seed"] == 1 and gen["version"] and gen["channel"]["rician_k"] == 4.0
    assert gen["samples_per_symbol"] == 8 and gen["snrs"] == [-20, 0, 18]


def test_default_snr_grid_and_class_subset_labels():
    ds = synthesize(frames_per_key=1, classes=["WBFM", "BPSK"])
    assert ds.snr_values == list(range(-20, 20, 2))
    assert ds.classes == ["WBFM", "BPSK"] and sorted(set(ds.labels.tolist())) == [0, 1]
    with pytest.raises(ValueError):
        synthesize(frames_per_key=1, classes=["FM-RADIO"])


def test_frames_have_unit_energy_after_noise():
    ds = synthesize(frames_per_key=20, snrs=[-20, 4, 18])
    power = np.mean(ds.iq.astype(np.float64) ** 2, axis=2).sum(axis=1)
    np.testing.assert_allclose(power, 1.0, atol=1e-5)


def test_same_seed_same_bytes_other_seed_other_data():
    a = synthesize(frames_per_key=4, snrs=[-10, 10], seed=7)
    b = synthesize(frames_per_key=4, snrs=[-10, 10], seed=7)
    c = synthesize(frames_per_key=4, snrs=[-10, 10], seed=8)
    assert a.iq.tobytes() == b.iq.tobytes()
    assert np.array_equal(a.labels, c.labels) and np.array_equal(a.snrs, c.snrs)
    per_frame_equal = np.all(a.iq == c.iq, axis=(1, 2))
    assert not per_frame_equal.any()


def test_keys_are_consistent_across_subsets():
    full = synthesize(frames_per_key=5, snrs=[-2, 0, 10], seed=3)
    part = synthesize(frames_per_key=5, snrs=[10, 0], classes=["QPSK", "AM-SSB"], seed=3)
    for name in ("QPSK", "AM-SSB"):
        for snr in (0, 10):
            f = full.iq[(full.labels == full.classes.index(name)) & (full.snrs == snr)]
            p = part.iq[(part.labels == part.classes.index(name)) & (part.snrs == snr)]
            assert f.tobytes() == p.tobytes()


def test_long_frames():
    ds = synthesize(frames_per_key=4, frame_length=1024, snrs=[0, 10], classes=["QAM64", "WBFM", "GFSK"])
    assert ds.iq.shape == (24, 2, 1024) and ds.frame_length == 1024
    np.testing.assert_allclose(np.mean(np.abs(_cplx(ds)) ** 2, axis=1), 1.0, atol=1e-5)


def _matched_symbols(frames, sps=8):
    """Matched-filter BPSK frames and sample each at its best symbol timing."""
    h = rrc_taps(0.35, sps, 10)
    y = np.array([np.convolve(f, h, mode="valid") for f in frames])
    out = []
    for row in y:
        phase = min(range(sps), key=lambda p: np.var(np.abs(row[p::sps])) / np.mean(np.abs(row[p::sps]) ** 2))
        out.append(row[phase::sps][:5])
    return np.array(out)


def test_bpsk_without_impairments_matched_filters_to_plus_minus_one():
    frames = synthesize_key("BPSK", 10, 30, channel=ChannelConfig.off())
    s = _matched_symbols(frames)
    scale = np.sqrt(8)              # unit-energy RRC, 8 samples/symbol, frame scaled to unit power
    assert np.abs(s.imag).max() < 1e-9
    np.testing.assert_allclose(np.abs(s.real) / scale, 1.0, atol=0.06)
    assert (s.real > 0).any() and (s.real < 0).any()


def test_switching_one_impairment_leaves_the_other_draws_alone():
    # CFO and carrier phase are unit-modulus: the envelope must be unchanged, the phase not
    off = synthesize_key("QAM16", 0, 50, channel=ChannelConfig.off())
    rot = synthesize_key("QAM16", 0, 50, channel=ChannelConfig.only("cfo", "phase"))
    np.testing.assert_allclose(np.abs(rot), np.abs(off), atol=1e-9)
    assert np.abs(rot - off).max() > 0.5


def test_cfo_rotates_bpsk_over_the_frame():
    def cfo_hz(channel):
        frames = synthesize_key("BPSK", 10, 200, channel=channel)
        s2 = _matched_symbols(frames) ** 2          # squaring strips the +-1 data
        step = np.angle(s2[:, 1:] * np.conj(s2[:, :-1])).mean(axis=1)   # 2 * 2 pi f * 8 / fs
        return step / (2 * 2 * np.pi * 8) * FS
    f_on, f_off = cfo_hz(ChannelConfig.only("cfo")), cfo_hz(ChannelConfig.off())
    assert np.abs(f_off).max() < 1.0
    assert np.abs(f_on).max() < 520 and np.std(f_on) > 200


@pytest.mark.parametrize("name", ["QPSK", "AM-DSB", "WBFM"])
def test_labelled_snr_holds_through_the_full_channel(name):
    """Same key with and without AWGN (identical other draws): SNR = rho^2 / (1 - rho^2)."""
    snrs = [-10, 0, 10, 18]
    noisy = synthesize(frames_per_key=1500, snrs=snrs, classes=[name], seed=5)
    clean = synthesize(frames_per_key=1500, snrs=snrs, classes=[name], seed=5,
                       channel=ChannelConfig(awgn=False))
    x, y = _cplx(clean), _cplx(noisy)
    for snr in snrs:
        sel = noisy.snrs == snr
        rho = np.mean(np.real(np.sum(y[sel] * np.conj(x[sel]), axis=1)) / x.shape[1])
        assert 10 * np.log10(rho ** 2 / (1 - rho ** 2)) == pytest.approx(snr, abs=0.3)


def test_constellations_have_unit_energy_and_their_shapes():
    for name in ("BPSK", "QPSK", "8PSK", "PAM4", "QAM16", "QAM64"):
        assert np.mean(np.abs(constellation(name)) ** 2) == pytest.approx(1.0)
    for name, size in (("BPSK", 2), ("QPSK", 4), ("8PSK", 8)):        # PSK: constant envelope
        pts = constellation(name)
        assert len(pts) == size and np.allclose(np.abs(pts), 1.0)
    assert np.allclose(constellation("PAM4").imag, 0) and len(constellation("PAM4")) == 4
    assert len(np.unique(np.round(np.abs(constellation("QAM16")), 9))) == 3
    assert len(np.unique(np.round(np.abs(constellation("QAM64")), 9))) == 9


def _spectrum(x):
    return np.mean(np.abs(np.fft.fft(x * np.hanning(x.shape[1]), axis=1)) ** 2, axis=0)


def _occupied(x, share=0.99):
    p = np.sort(_spectrum(x))[::-1]
    return np.searchsorted(np.cumsum(p) / p.sum(), share) / x.shape[1]   # fraction of the band


def test_modulations_differ_in_obvious_statistics():
    rng, L = np.random.default_rng(0), 1024
    mod = {name: modulate(name, 200, L, rng) for name in RML2016A_CLASSES}
    freqs = np.fft.fftfreq(L)
    ssb, dsb = _spectrum(mod["AM-SSB"]), _spectrum(mod["AM-DSB"])
    assert ssb[freqs < 0].sum() < 0.01 * ssb[freqs > 0].sum()            # one-sided
    assert dsb[freqs < 0].sum() == pytest.approx(dsb[freqs > 0].sum(), rel=0.05)
    assert np.allclose(mod["AM-DSB"].imag, 0) and mod["AM-DSB"].real.min() > 0   # carrier, index 0.8
    for name in ("CPFSK", "GFSK", "WBFM"):                                # constant envelope
        np.testing.assert_allclose(np.abs(mod[name]), 1.0, atol=1e-12)
    for name in ("QPSK", "QAM16", "AM-SSB"):                              # not after pulse shaping
        assert np.std(np.abs(mod[name])) > 0.2 * np.sqrt(np.mean(np.abs(mod[name]) ** 2))
    assert np.allclose(mod["BPSK"].imag, 0) and np.allclose(mod["PAM4"].imag, 0)
    # CPFSK h = 0.5: the phase moves +-pi/16 per sample; GFSK (h ~ 0.255, Gaussian) less and smoothly
    dphi = np.angle(mod["CPFSK"][:, 1:] * np.conj(mod["CPFSK"][:, :-1]))
    np.testing.assert_allclose(np.abs(dphi), np.pi / 16, atol=1e-9)
    gphi = np.angle(mod["GFSK"][:, 1:] * np.conj(mod["GFSK"][:, :-1]))
    assert np.abs(gphi).max() <= np.pi * 0.8 / np.pi / 8 + 1e-9 and len(np.unique(np.round(gphi, 6))) > 20
    # bandwidths: RRC roll-off 0.35 at 8 sps occupies ~1.35/8 of the band; WBFM wide; AM narrow
    assert _occupied(mod["QPSK"]) < 1.35 / 8 + 0.02 < _occupied(mod["WBFM"])
    assert _occupied(mod["GFSK"]) < _occupied(mod["CPFSK"])
    assert _occupied(mod["AM-DSB"], 0.9) < 0.03 and _occupied(mod["WBFM"]) > 0.5


def test_modulation_config_changes_the_signal():
    rng = np.random.default_rng
    wide = modulate("WBFM", 50, 1024, rng(0))
    narrow = modulate("WBFM", 50, 1024, rng(0), cfg=ModulationConfig(fm_deviation_hz=5e3))
    assert _occupied(narrow) < 0.5 * _occupied(wide)
    lower = modulate("AM-SSB", 50, 1024, rng(0), cfg=ModulationConfig(ssb_sideband="lower"))
    spec, freqs = _spectrum(lower), np.fft.fftfreq(1024)
    assert spec[freqs > 0].sum() < 0.01 * spec[freqs < 0].sum()
    with pytest.raises(ValueError):
        modulate("OOK", 1, 16, rng(0))

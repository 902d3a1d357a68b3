"""Channel impairments: each one switchable, each one doing what it says, and the SNR defined right."""
import json

import numpy as np
import pytest

from amrlib.data.channel import (
    IMPAIRMENTS,
    ChannelConfig,
    add_awgn,
    apply_channel,
    interpolate,
    margin,
    random_walk,
    rician_fading,
)
from amrlib.data.modulation import modulate

FS = 200e3


def _rngs(seed=0):
    return {k: np.random.default_rng([seed, i]) for i, k in enumerate(IMPAIRMENTS)}


def _run(rows, cfg, L=128, snr=10, seed=0):
    edge = margin(cfg, L, FS)
    starts = np.full(len(rows), edge) + np.arange(len(rows)) % 8
    assert rows.shape[1] >= edge + 8 + L + edge
    return apply_channel(rows, starts, L, snr, FS, cfg, _rngs(seed)), starts


def _clean(rows, starts, L):
    return rows[np.arange(len(rows))[:, None], starts[:, None] + np.arange(L)]


def _snr_db(signal, noise):
    return 10 * np.log10(np.mean(np.abs(signal) ** 2) / np.mean(np.abs(noise) ** 2))


@pytest.mark.parametrize("snr", [-20, -10, 0, 10, 18])
def test_awgn_snr_is_signal_power_over_noise_power(snr):
    x = modulate("QPSK", 400, 128, np.random.default_rng(1))
    noise = add_awgn(x, snr, np.random.default_rng(2)) - x
    assert abs(_snr_db(x, noise) - snr) < 0.3
    # noise split equally between I and Q, and white complex Gaussian
    assert np.mean(noise.real ** 2) == pytest.approx(np.mean(noise.imag ** 2), rel=0.05)
    assert abs(np.mean(noise.real * noise.imag)) < 0.05 * np.mean(np.abs(noise) ** 2)


def test_awgn_is_relative_to_each_rows_power_and_accepts_per_row_snrs():
    i = np.arange(900)
    x = modulate("QPSK", 900, 512, np.random.default_rng(1)) * np.array([1e-3, 1.0, 1e3])[(i // 3) % 3, None]
    snrs = np.array([-5, 5, 15])[i % 3]
    noise = add_awgn(x, snrs, np.random.default_rng(2)) - x
    for k, snr in enumerate([-5, 5, 15]):
        for scale in range(3):
            sel = (i % 3 == k) & ((i // 3) % 3 == scale)
            assert abs(_snr_db(x[sel], noise[sel]) - snr) < 0.3


def test_everything_off_is_an_exact_identity_cut():
    rows = np.random.default_rng(0).standard_normal((20, 400)) + 1j
    out, starts = _run(rows, ChannelConfig.off())
    np.testing.assert_allclose(out, _clean(rows, starts, 128), atol=1e-12)


@pytest.mark.parametrize("snr", [-10, 0, 12])
def test_awgn_through_the_channel(snr):
    rows = modulate("8PSK", 500, 400, np.random.default_rng(3))
    out, starts = _run(rows, ChannelConfig.only("awgn"), snr=snr)
    clean = _clean(rows, starts, 128)
    assert abs(_snr_db(clean, out - clean) - snr) < 0.3


def test_cfo_rotates_phase_over_the_frame_within_the_limit():
    rows = np.ones((2000, 400), dtype=complex)
    out, _ = _run(rows, ChannelConfig.only("cfo"))
    np.testing.assert_allclose(np.abs(out), 1.0, atol=1e-12)
    freq = np.diff(np.unwrap(np.angle(out), axis=-1), axis=-1) * FS / (2 * np.pi)
    assert np.abs(freq).max() <= 500.0 + 1e-6
    mean_freq = freq.mean(axis=-1)
    # start uniform in [-500, 500] Hz: std 500/sqrt(3), and the phase really moves over a frame
    assert np.std(mean_freq) == pytest.approx(500 / np.sqrt(3), rel=0.1)
    assert np.median(np.abs(np.angle(out[:, -1] * np.conj(out[:, 0])))) > 0.5
    off, _ = _run(rows, ChannelConfig.off())
    np.testing.assert_allclose(off, 1.0)


def test_random_walk_is_reflected_into_its_bounds():
    w = random_walk(np.random.default_rng(0), 500, 3000, 50.0, 5.0)
    assert np.abs(w).max() <= 50.0 + 1e-9
    assert w[:, 0].min() < -40 and w[:, 0].max() > 40
    assert np.abs(np.diff(w, axis=-1)).max() < 40          # a walk, not jumps
    assert np.all(random_walk(np.random.default_rng(0), 3, 10, 0.0, 1.0) == 0)


def test_phase_only_is_a_uniform_constant_rotation():
    rows = modulate("QPSK", 3000, 400, np.random.default_rng(4))
    out, starts = _run(rows, ChannelConfig.only("phase"))
    ratio = out / _clean(rows, starts, 128)
    np.testing.assert_allclose(np.abs(ratio), 1.0, atol=1e-9)
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, 128)), atol=1e-9)
    assert abs(np.mean(ratio[:, 0])) < 0.05                 # phases spread over the circle


def test_fading_only_is_rician_k4_with_unit_power():
    rows = np.ones((4000, 400), dtype=complex)
    out, _ = _run(rows, ChannelConfig.only("fading"))
    h = out[:, 0]
    p = np.mean(np.abs(h) ** 2)
    assert p == pytest.approx(1.0, abs=0.05)
    # E|h|^4 / (E|h|^2)^2 = (K^2 + 4K + 2 - 1/N) / (K+1)^2 = 1.355 (Rayleigh 2, no fading 1)
    assert np.mean(np.abs(h) ** 4) / p ** 2 == pytest.approx(1.355, abs=0.06)
    # frames get independent realisations; 50 Hz Doppler moves each component <= 0.2 rad in 128
    # samples (median |h(end) - h(0)| ~ 0.13); 1 Hz would be frozen (~0.003), 5 kHz decorrelated
    assert np.std(np.abs(h)) > 0.2
    assert 0.07 < np.median(np.abs(out[:, -1] - out[:, 0])) < 0.2
    fast, _ = _run(rows, ChannelConfig.only("fading", doppler_hz=5000.0))
    assert np.median(np.abs(fast[:, -1] - fast[:, 0])) > 0.8


@pytest.mark.parametrize("doppler", [50.0, 800.0])
def test_fading_knot_interpolation_matches_the_exact_sum_of_sinusoids(doppler):
    n, L, N, K = 50, 1024, 8, 4.0
    got = rician_fading(np.random.default_rng(5), n, L, FS, K, N, doppler)
    rng = np.random.default_rng(5)
    w = 2 * np.pi * doppler * np.arange(L) / FS
    los = np.exp(1j * (np.cos(rng.uniform(0, 2 * np.pi, (n, 1))) * w + rng.uniform(0, 2 * np.pi, (n, 1))))
    alpha, phi = rng.uniform(0, 2 * np.pi, (n, N)), rng.uniform(0, 2 * np.pi, (n, N))
    diffuse = np.exp(1j * (np.cos(alpha)[:, :, None] * w + phi[:, :, None])).sum(axis=1)
    exact = np.sqrt(K / (K + 1)) * los + np.sqrt(1 / ((K + 1) * N)) * diffuse
    assert np.abs(got - exact).max() < 1e-3


def test_multipath_only_has_the_fractional_delay_frequency_response():
    n = np.arange(600)
    for f in (0.02, 0.15, -0.3):
        rows = np.exp(2j * np.pi * f * n)[None, :].repeat(4, axis=0)
        out, starts = _run(rows, ChannelConfig.only("multipath"))
        expected = sum(g * np.exp(-2j * np.pi * f * d) for d, g in zip((0.0, 0.9, 1.7), (1.0, 0.8, 0.3)))
        np.testing.assert_allclose(out / _clean(rows, starts, 128), expected, atol=2e-3)


def test_sro_only_drifts_the_sampling_clock_within_250_ppm():
    f, L = 0.2, 1024
    rows = np.exp(2j * np.pi * f * np.arange(1400))[None, :].repeat(300, axis=0)
    out, starts = _run(rows, ChannelConfig.only("sro"), L=L)
    drift = np.unwrap(np.angle(out * np.conj(_clean(rows, starts, L))), axis=-1) / (2 * np.pi * f)
    slope = (drift[:, -1] - drift[:, 0]) / (L - 1)           # samples of drift per sample
    assert np.abs(slope).max() <= 50 / FS * 1.05
    assert np.std(slope) > 0.3 * 50 / FS                      # spread over the +-250 ppm range
    assert np.abs(out).min() == pytest.approx(1.0, abs=0.02)  # resampled, not distorted


def test_interpolation_is_band_limited_and_exact_at_integers():
    rng = np.random.default_rng(6)
    f = rng.uniform(-0.3, 0.3, (8, 1))
    x = np.exp(2j * np.pi * f * np.arange(2000))
    pos = 50 + np.arange(1500)[None, :] + rng.uniform(0, 1, (8, 1500))
    np.testing.assert_allclose(interpolate(x, pos), np.exp(2j * np.pi * f * pos), atol=2e-3)
    ipos = 50 + np.arange(100)[None, :].repeat(8, 0).astype(float)
    np.testing.assert_allclose(interpolate(x, ipos), x[:, 50:150], atol=1e-12)


def test_config_helpers_and_bad_starts():
    assert not any(getattr(ChannelConfig.off(), k) for k in IMPAIRMENTS)
    assert all(getattr(ChannelConfig(), k) for k in IMPAIRMENTS)
    only = ChannelConfig.only("cfo", doppler_hz=3.0)
    assert only.cfo and not only.awgn and only.doppler_hz == 3.0
    with pytest.raises(ValueError):
        ChannelConfig.only("teleport")
    with pytest.raises(ValueError):
        ChannelConfig(path_delays=(0.0, 1.0), path_gains=(1.0,))
    assert json.loads(json.dumps(ChannelConfig().to_dict()))["path_delays"] == [0.0, 0.9, 1.7]
    rows = np.ones((2, 200), dtype=complex)
    with pytest.raises(ValueError):
        apply_channel(rows, [0, 0], 128, 0, FS, ChannelConfig(), _rngs())

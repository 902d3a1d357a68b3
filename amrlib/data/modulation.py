"""Vectorised complex-baseband modulators for the RML2016.10a-style synthetic generator.

Every modulator returns a complex128 array ``[n, length]``: ``n`` independent signal realisations,
each already past its filter transients (we generate extra symbols and keep only the samples that
see the full filter support), so any window of a row is a stationary piece of the signal.

Choices (the RML2016.10a GNU Radio recipe of O'Shea and West, 2016, where it says; the rest is **ours**):

* Linear modulations (BPSK, QPSK, 8PSK, PAM4, QAM16, QAM64): i.i.d. uniform symbols from a
  constellation of unit average symbol energy, upsampled to ``sps`` samples/symbol and shaped by a
  root-raised-cosine filter, roll-off 0.35, spanning 10 symbols, normalised to unit energy (so a
  matched filter returns the symbol values at the symbol instants).
* CPFSK: binary, rectangular frequency pulse, modulation index h = 0.5 (phase moves by +-pi/2 per
  symbol), as GNU Radio's ``cpfsk_bc(k=0.5)``.
* GFSK: binary, NRZ filtered by a Gaussian of BT = 0.35 (span 4 symbols). GNU Radio's ``gfsk_mod``
  with sensitivity 0.1 rad/sample at 8 samples/symbol moves the phase 0.8 rad per symbol, i.e.
  h = 0.8 / pi ~= 0.255; we keep that index (stored as h so it is independent of ``sps``).
* Analog sources: the original used audio; we use a band-limited Gaussian message (random tones on
  a 4096-point FFT grid, ~49 Hz apart, between 300 Hz and 5 kHz, the AM-broadcast audio band), scaled
  to an RMS of 1/3 and clipped to [-1, 1] (a peak-normalised "audio" signal).
  - AM-DSB: double sideband *with* carrier, ``1 + m_a * m(t)``, index m_a = 0.8 (GNU Radio's AM
    transmitter of the original adds a constant 1 to the message).
  - AM-SSB: upper sideband, suppressed carrier, ``m(t) + j H{m}(t)`` via ``scipy.signal.hilbert``.
  - WBFM: frequency deviation 75 kHz at |m| = 1 (broadcast FM; RMS deviation 25 kHz), no
    pre-emphasis; Carson bandwidth ~160 kHz of the 200 kHz sample rate.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal as sps_signal

LINEAR = ("BPSK", "QPSK", "8PSK", "PAM4", "QAM16", "QAM64")
FREQUENCY = ("CPFSK", "GFSK")
ANALOG = ("AM-DSB", "AM-SSB", "WBFM")
SUPPORTED = LINEAR + FREQUENCY + ANALOG


@dataclass(frozen=True)
class ModulationConfig:
    """Modulator parameters (all JSON-able); defaults follow the RML2016.10a recipe where it says."""

    rrc_rolloff: float = 0.35
    rrc_span_symbols: int = 10
    cpfsk_h: float = 0.5
    gfsk_h: float = 0.8 / np.pi          # GNU Radio sensitivity 0.1 rad/sample x 8 samples/symbol
    gfsk_bt: float = 0.35
    gfsk_span_symbols: int = 4
    message_band_hz: tuple[float, float] = (300.0, 5000.0)
    message_rms: float = 1.0 / 3.0       # then clipped to [-1, 1]
    message_grid: int = 4096             # FFT grid of the message (~49 Hz bins at 200 kHz)
    am_index: float = 0.8
    ssb_sideband: str = "upper"
    fm_deviation_hz: float = 75e3        # at |m| = 1


def constellation(name: str) -> np.ndarray:
    """Complex constellation points of a linear modulation, with unit average symbol energy."""
    if name == "BPSK":
        pts = np.array([-1.0, 1.0], dtype=complex)
    elif name == "QPSK":
        pts = np.exp(1j * (np.pi / 4 + np.pi / 2 * np.arange(4)))
    elif name == "8PSK":
        pts = np.exp(2j * np.pi * np.arange(8) / 8)
    elif name == "PAM4":
        pts = np.array([-3.0, -1.0, 1.0, 3.0], dtype=complex)
    elif name in ("QAM16", "QAM64"):
        m = 4 if name == "QAM16" else 8
        levels = np.arange(-(m - 1), m, 2, dtype=float)
        pts = (levels[:, None] + 1j * levels[None, :]).ravel()
    else:
        raise ValueError(f"{name!r} is not a linear modulation (one of {LINEAR})")
    return pts / np.sqrt(np.mean(np.abs(pts) ** 2))


def rrc_taps(rolloff: float, sps: int, span_symbols: int) -> np.ndarray:
    """Root-raised-cosine impulse response, ``span_symbols * sps + 1`` taps, unit energy."""
    t = np.arange(-span_symbols * sps // 2, span_symbols * sps // 2 + 1) / sps
    b = rolloff
    h = np.empty_like(t)
    zero = np.isclose(t, 0.0)
    edge = np.isclose(np.abs(4 * b * t), 1.0) if b > 0 else np.zeros_like(t, bool)
    reg = ~(zero | edge)
    tr = t[reg]
    h[reg] = (np.sin(np.pi * tr * (1 - b)) + 4 * b * tr * np.cos(np.pi * tr * (1 + b))) / (
        np.pi * tr * (1 - (4 * b * tr) ** 2))
    h[zero] = 1 - b + 4 * b / np.pi
    h[edge] = b / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * b))
                                + (1 - 2 / np.pi) * np.cos(np.pi / (4 * b)))
    return h / np.sqrt(np.sum(h ** 2))


def gaussian_taps(bt: float, sps: int, span_symbols: int) -> np.ndarray:
    """Gaussian pulse-shaping filter of bandwidth-time product ``bt``, taps summing to 1."""
    t = np.arange(-span_symbols * sps // 2, span_symbols * sps // 2 + 1) / sps
    sigma = np.sqrt(np.log(2)) / (2 * np.pi * bt)           # in symbol periods
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def _shaped(rng: np.random.Generator, alphabet: np.ndarray, taps: np.ndarray, n: int, length: int,
            sps: int) -> np.ndarray:
    """Random symbols from ``alphabet`` upsampled by ``sps`` through ``taps``; transients cut."""
    nsym = int(np.ceil((length + len(taps)) / sps)) + 2
    symbols = alphabet[rng.integers(0, len(alphabet), size=(n, nsym))]
    y = sps_signal.upfirdn(taps, symbols, up=sps, axis=-1)
    start = len(taps) - 1                                    # first output with full filter support
    return y[:, start:start + length]


def linear(name: str, n: int, length: int, rng: np.random.Generator, sps: int,
           cfg: ModulationConfig) -> np.ndarray:
    """RRC-shaped linear modulation (PSK, PAM, QAM)."""
    taps = rrc_taps(cfg.rrc_rolloff, sps, cfg.rrc_span_symbols)
    return _shaped(rng, constellation(name), taps, n, length, sps)


def fsk(name: str, n: int, length: int, rng: np.random.Generator, sps: int,
        cfg: ModulationConfig) -> np.ndarray:
    """Binary continuous-phase FSK: rectangular (CPFSK) or Gaussian-filtered (GFSK) frequency pulse.

    The frequency pulse of one symbol integrates to ``sps``, and the phase advances by
    ``pi * h / sps`` per unit of frequency pulse, so each symbol moves the phase by ``+-pi * h``.
    """
    if name == "CPFSK":
        pulse, h = np.ones(sps), cfg.cpfsk_h
    elif name == "GFSK":
        pulse = np.convolve(gaussian_taps(cfg.gfsk_bt, sps, cfg.gfsk_span_symbols), np.ones(sps))
        h = cfg.gfsk_h
    else:
        raise ValueError(f"{name!r} is not CPFSK or GFSK")
    freq = _shaped(rng, np.array([-1.0, 1.0]), pulse, n, length, sps).real
    phase = np.cumsum(freq * (np.pi * h / sps), axis=-1)
    return np.exp(1j * phase)


def message(n: int, length: int, rng: np.random.Generator, fs: float,
            cfg: ModulationConfig) -> np.ndarray:
    """Band-limited random "audio" message, real ``[n, length]``.

    Complex Gaussian amplitudes on the FFT bins inside ``cfg.message_band_hz`` (at least one bin),
    so the row is a circularly stationary sum of random tones with no filter transient. Scaled
    analytically (not per row) to RMS ``cfg.message_rms`` and clipped to [-1, 1].
    """
    freqs = np.fft.rfftfreq(length, d=1.0 / fs)
    lo, hi = cfg.message_band_hz
    band = (freqs >= lo) & (freqs <= hi) & (freqs > 0) & (freqs < fs / 2)
    if not band.any():                      # rows shorter than one period of the band edge
        band[1] = True
    nb = int(band.sum())
    spec = np.zeros((n, len(freqs)), dtype=complex)
    spec[:, band] = rng.standard_normal((n, nb)) + 1j * rng.standard_normal((n, nb))
    # each used bin has E|X|^2 = 2, so E[m^2] = 4 nb / length^2 after irfft
    m = np.fft.irfft(spec, n=length, axis=-1) * (length / np.sqrt(4 * nb))
    return np.clip(m * cfg.message_rms, -1.0, 1.0)


def analog(name: str, n: int, length: int, rng: np.random.Generator, fs: float,
           cfg: ModulationConfig) -> np.ndarray:
    """AM-DSB (with carrier), AM-SSB (suppressed carrier, Hilbert) or WBFM of a random message."""
    grid = max(length, cfg.message_grid)
    m = message(n, grid, rng, fs, cfg)
    if name == "AM-SSB":
        # analytic signal m + jH{m} on the full circular grid (no edge effect): positive
        # frequencies only, i.e. the upper sideband; its conjugate is the lower one
        a = sps_signal.hilbert(m, axis=-1)[:, :length]
        return a if cfg.ssb_sideband == "upper" else np.conj(a)
    m = m[:, :length]
    if name == "AM-DSB":
        return (1.0 + cfg.am_index * m).astype(complex)
    if name == "WBFM":
        phase = np.cumsum(m, axis=-1) * (2 * np.pi * cfg.fm_deviation_hz / fs)
        return np.exp(1j * phase)
    raise ValueError(f"{name!r} is not an analog modulation (one of {ANALOG})")


def config_dict(cfg: ModulationConfig) -> dict:
    """JSON-able dict of a :class:`ModulationConfig` (tuples as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def modulate(name: str, n: int, length: int, rng: np.random.Generator, sps: int = 8,
             fs: float = 200e3, cfg: ModulationConfig | None = None) -> np.ndarray:
    """``n`` independent complex-baseband rows of ``length`` samples of modulation ``name``."""
    cfg = cfg or ModulationConfig()
    if name in LINEAR:
        return linear(name, n, length, rng, sps, cfg)
    if name in FREQUENCY:
        return fsk(name, n, length, rng, sps, cfg)
    if name in ANALOG:
        return analog(name, n, length, rng, fs, cfg)
    raise ValueError(f"unknown modulation {name!r}; supported: {SUPPORTED}")

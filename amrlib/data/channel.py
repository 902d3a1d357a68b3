"""Vectorised channel impairments of the RML2016.10a recipe, each switchable (``ChannelConfig``).

:func:`apply_channel` maps ``n`` long complex rows to ``n`` frames of ``frame_length`` samples, one
independent channel realisation per row, applying in this order:

1. sample-rate offset (SRO): the receiver samples at ``t_m = t_0 + sum_k (1 + d_k)``, where
   ``d_k = sro_k / fs`` and ``sro_k`` is a random walk; the row is read at those fractional times by a
   Kaiser-windowed sinc interpolator (16 taps);
2. multipath with fading: ``y(t) = sum_p g_p f_p(t) x(t - tau_p)`` (delays in samples, fractional
   delays by the same interpolator), each path with its own Rician fading process ``f_p`` of unit mean
   power (sum of sinusoids); multipath off = one path, fading off = ``f_p = 1``;
3. carrier-frequency offset (CFO): phase ``2 pi / fs * cumsum(cfo_k)``, ``cfo_k`` a random walk;
4. random carrier phase, uniform in [0, 2 pi);
5. AWGN at a correctly defined SNR (:func:`add_awgn`).

Choices (**ours** where the RML2016.10a recipe, O'Shea and West, GNU Radio Conference 2016, is silent):

* Random walks start uniformly in ``[-max, max]`` (an unsynchronised receiver) and take Gaussian
  steps of ``*_walk_std_hz`` per sample (0.01 Hz, the std-dev argument of the original's GNU Radio
  ``dynamic_channel_model`` call), reflected at +-max. A walk started at 0 with such steps would
  stay within ~1 Hz of zero over a 10k-sample burst, i.e. hardly any offset at all.
* SRO max 50 Hz at 200 kHz is 250 ppm: at most 0.03 samples of drift over a 128-sample frame.
* Fading: Doppler 50 Hz (60 km/h at 900 MHz), not the original's 1 Hz. At 200 kHz a 128-sample frame
  lasts 0.64 ms: at 1 Hz the channel is frozen (and in the original all frames cut from one 50 ms
  burst shared one fading state); at 50 Hz each sinusoid turns by up to 0.2 rad over a 128-sample frame
  and by 1.6 rad over a 1024-sample one. Every frame has its own realisation (random sinusoid angles
  and phases), so frames are independent in any case.
* SNR = mean |signal|^2 over the frame / noise power per complex sample, measured per frame after
  all other impairments; noise std per complex sample = sqrt(P / 10^(snr/10)), half the power in I,
  half in Q. (The original used 10^(-snr/10) as an amplitude, so its labelled SNRs were wrong.)
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.special import i0

IMPAIRMENTS = ("sro", "multipath", "fading", "cfo", "phase", "awgn")


@dataclass(frozen=True)
class ChannelConfig:
    """Switches and parameters of each impairment (all JSON-able)."""

    sro: bool = True
    sro_max_hz: float = 50.0
    sro_walk_std_hz: float = 0.01
    multipath: bool = True
    path_delays: tuple[float, ...] = (0.0, 0.9, 1.7)
    path_gains: tuple[float, ...] = (1.0, 0.8, 0.3)
    fading: bool = True
    rician_k: float = 4.0
    fading_sinusoids: int = 8
    doppler_hz: float = 50.0
    cfo: bool = True
    cfo_max_hz: float = 500.0
    cfo_walk_std_hz: float = 0.01
    phase: bool = True
    awgn: bool = True
    interp_half_width: int = 8
    kaiser_beta: float = 8.0

    def __post_init__(self):
        if len(self.path_delays) != len(self.path_gains) or not self.path_delays:
            raise ValueError("path_delays and path_gains must be non-empty and of equal length")
        if min(self.path_delays) < 0:
            raise ValueError(f"path delays must be >= 0 samples, got {self.path_delays}")
        if self.interp_half_width < 1 or self.fading_sinusoids < 1 or self.rician_k < 0:
            raise ValueError("need interp_half_width >= 1, fading_sinusoids >= 1, rician_k >= 0")
        object.__setattr__(self, "path_delays", tuple(float(d) for d in self.path_delays))
        object.__setattr__(self, "path_gains", tuple(float(g) for g in self.path_gains))

    @classmethod
    def off(cls, **kwargs) -> "ChannelConfig":
        """Every impairment off (an identity channel), then ``kwargs`` applied."""
        return replace(cls(**{k: False for k in IMPAIRMENTS}), **kwargs)

    @classmethod
    def only(cls, *names: str, **kwargs) -> "ChannelConfig":
        """Only the named impairments on, e.g. ``ChannelConfig.only("cfo", "awgn")``."""
        bad = set(names) - set(IMPAIRMENTS)
        if bad:
            raise ValueError(f"unknown impairments {sorted(bad)}; known: {IMPAIRMENTS}")
        return cls.off(**{k: True for k in names}, **kwargs)

    def to_dict(self) -> dict:
        """JSON-able dict of every field (tuples as lists)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def interp_kernel(z: np.ndarray, half_width: int, beta: float) -> np.ndarray:
    """Kaiser-windowed sinc, support ``|z| < half_width``."""
    w = np.clip(1.0 - (z / half_width) ** 2, 0.0, None)
    return np.sinc(z) * i0(beta * np.sqrt(w)) / i0(beta)


def _cis(phase: np.ndarray) -> np.ndarray:
    """``exp(1j * phase)`` for real ``phase`` (cos/sin: about twice as fast as complex exp)."""
    out = np.empty(np.shape(phase), dtype=np.complex128)
    np.cos(phase, out=out.real)
    np.sin(phase, out=out.imag)
    return out


_TABLE_PHASES = 4096
_tables: dict[tuple[int, float], np.ndarray] = {}


def _kernel_table(half_width: int, beta: float) -> np.ndarray:
    """Polyphase table ``[_TABLE_PHASES + 1, 2 * half_width]``: kernel at ``u - j`` for u on a grid."""
    key = (int(half_width), float(beta))
    if key not in _tables:
        u = np.arange(_TABLE_PHASES + 1)[:, None] / _TABLE_PHASES
        j = np.arange(-half_width + 1, half_width + 1)[None, :]
        _tables[key] = interp_kernel(u - j, half_width, beta)
    return _tables[key]


def interpolate(x: np.ndarray, positions: np.ndarray, half_width: int = 8,
                beta: float = 8.0) -> np.ndarray:
    """Band-limited read of rows ``x [n, T]`` at fractional ``positions [n, W]`` (sample units).

    Positions must keep ``half_width`` samples inside the row on each side. The fractional part is
    rounded to 1/4096 sample (a polyphase table of the kernel); integer positions are exact.
    """
    base = np.floor(positions).astype(np.int64)
    phase = np.rint((positions - base) * _TABLE_PHASES).astype(np.int64)
    table = _kernel_table(half_width, beta)
    rows = np.arange(x.shape[0])[:, None]
    out = np.zeros(positions.shape, dtype=np.result_type(x, np.complex128))
    for col, j in enumerate(range(-half_width + 1, half_width + 1)):
        out += table[phase, col] * x[rows, base + j]
    return out


def fractional_delay(x: np.ndarray, delay: float, start: int, length: int, half_width: int = 8,
                     beta: float = 8.0) -> np.ndarray:
    """``x(start + m - delay)`` for ``m = 0..length-1`` on every row: one fixed FIR, no gather."""
    b = int(np.floor(-delay))
    u = -delay - b
    if u == 0.0:                                             # integer delay: a plain shift
        return x[:, start + b:start + b + length].astype(np.result_type(x, np.complex128))
    taps = np.arange(-half_width + 1, half_width + 1)
    weights = interp_kernel(u - taps, half_width, beta)
    out = np.zeros((x.shape[0], length), dtype=np.result_type(x, np.complex128))
    for j, w in zip(taps, weights):
        s = start + b + j
        out += w * x[:, s:s + length]
    return out


def random_walk(rng: np.random.Generator, n: int, length: int, max_dev: float,
                step_std: float) -> np.ndarray:
    """``[n, length]`` random walks starting uniform in [-max, max], reflected at +-max."""
    walk = rng.uniform(-max_dev, max_dev, size=(n, 1)) + np.cumsum(
        rng.normal(0.0, step_std, size=(n, length)), axis=-1)
    if max_dev <= 0:
        return np.zeros_like(walk)
    y = np.mod(walk + max_dev, 4.0 * max_dev)             # fold onto a triangle wave = reflection
    return max_dev - np.abs(y - 2.0 * max_dev)


def rician_fading(rng: np.random.Generator, n: int, length: int, fs: float, k_factor: float,
                  sinusoids: int, doppler_hz: float) -> np.ndarray:
    """Rician fading gains ``[n, length]``, unit mean power, by sum of sinusoids.

    ``f(t) = sqrt(K/(K+1)) e^{j(2 pi fd cos(theta0) t + phi0)}
    + sqrt(1/((K+1) N)) sum_i e^{j(2 pi fd cos(alpha_i) t + phi_i)}`` with all angles and phases
    uniform and independent per row. The process is evaluated on knots ``step`` samples apart, with
    ``step`` chosen so that ``2 pi fd step / fs <= 0.05`` rad, and linearly interpolated between
    them (error below 3e-4; the fading bandwidth is tiny next to the sample rate).
    """
    omega = 2 * np.pi * abs(doppler_hz) / fs                 # rad per sample
    step = int(max(1, min(length, np.floor(0.05 / omega)))) if omega > 0 else max(1, length)
    knots = np.arange(-(-length // step) + 1) * float(step)  # covers 0 .. length - 1
    w = omega * knots
    los = _cis(np.cos(rng.uniform(0, 2 * np.pi, (n, 1))) * w + rng.uniform(0, 2 * np.pi, (n, 1)))
    alpha = rng.uniform(0, 2 * np.pi, (n, sinusoids))
    phi = rng.uniform(0, 2 * np.pi, (n, sinusoids))
    diffuse = _cis(np.cos(alpha)[:, :, None] * w + phi[:, :, None]).sum(axis=1)
    f = np.sqrt(k_factor / (k_factor + 1)) * los + np.sqrt(1 / ((k_factor + 1) * sinusoids)) * diffuse
    if step == 1:
        return f[:, :length]
    t = np.arange(length)
    idx, frac = t // step, (t % step) / step
    return f[:, idx] * (1 - frac) + f[:, idx + 1] * frac


def add_awgn(x: np.ndarray, snr_db, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus complex white Gaussian noise at ``snr_db`` relative to each row's own power.

    Noise power per complex sample = mean(|x|^2 over the row) / 10^(snr/10), split equally between
    I and Q. ``snr_db`` is a scalar or one value per row.
    """
    p_sig = np.mean(np.abs(x) ** 2, axis=-1, keepdims=True)
    snr = np.broadcast_to(np.asarray(snr_db, dtype=float), (x.shape[0],))[:, None]
    std_iq = np.sqrt(p_sig / 10.0 ** (snr / 10.0) / 2.0)
    noise = std_iq * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))
    return x + noise


def _pads(cfg: ChannelConfig) -> tuple[int, int]:
    """Samples needed before/after the frame in the (resampled) window for the multipath FIRs."""
    hw = cfg.interp_half_width
    return int(np.ceil(max(cfg.path_delays, default=0.0))) + hw + 1, hw


def margin(cfg: ChannelConfig, frame_length: int, fs: float) -> int:
    """Row samples the channel needs on each side of a frame start/end.

    Computed as if every impairment were on, so switching one off never changes the row length
    (and hence never changes the random source data of a key).
    """
    left, right = _pads(cfg)
    window = left + frame_length + right
    drift = int(np.ceil(window * cfg.sro_max_hz / fs)) + 1
    return left + right + cfg.interp_half_width + drift


def apply_channel(rows: np.ndarray, starts: np.ndarray, frame_length: int, snr_db, fs: float,
                  cfg: ChannelConfig, rngs: dict[str, np.random.Generator]) -> np.ndarray:
    """Frames ``[n, frame_length]`` (complex128) cut from ``rows [n, T]`` at ``starts`` through the channel.

    ``rngs`` holds one generator per impairment name in :data:`IMPAIRMENTS` (independent streams, so
    switching one impairment off leaves the others' random draws unchanged). Each start must leave
    :func:`margin` samples before it and after ``start + frame_length``.
    """
    n, total = rows.shape
    starts = np.asarray(starts, dtype=np.int64)
    need = margin(cfg, frame_length, fs)
    if n and (starts.min() < need or starts.max() + frame_length + need > total):
        raise ValueError(f"frame starts must lie in [{need}, {total - frame_length - need}]")
    hw, beta = cfg.interp_half_width, cfg.kaiser_beta
    left, right = _pads(cfg)
    window = left + frame_length + right
    # 1. receiver sampling instants (window sample m sits at row position pos[:, m])
    pos = (starts - left)[:, None] + np.arange(window)[None, :]
    if cfg.sro:
        ratio = random_walk(rngs["sro"], n, window, cfg.sro_max_hz, cfg.sro_walk_std_hz) / fs
        drift = np.concatenate([np.zeros((n, 1)), np.cumsum(ratio[:, :-1], axis=-1)], axis=-1)
        win = interpolate(rows, pos + drift, hw, beta)
    else:
        win = rows[np.arange(n)[:, None], pos]
    # 2. multipath, each path with its own fading process
    delays, gains = (cfg.path_delays, cfg.path_gains) if cfg.multipath else ((0.0,), (1.0,))
    out = np.zeros((n, frame_length), dtype=complex)
    for d, g in zip(delays, gains):
        path = fractional_delay(win, d, left, frame_length, hw, beta)
        if cfg.fading:
            path *= rician_fading(rngs["fading"], n, frame_length, fs, cfg.rician_k,
                                  cfg.fading_sinusoids, cfg.doppler_hz)
        out += g * path
    # 3. carrier-frequency offset, 4. carrier phase
    if cfg.cfo:
        cfo = random_walk(rngs["cfo"], n, frame_length, cfg.cfo_max_hz, cfg.cfo_walk_std_hz)
        out *= _cis((2 * np.pi / fs) * np.cumsum(cfo, axis=-1))
    if cfg.phase:
        out *= _cis(rngs["phase"].uniform(0, 2 * np.pi, size=(n, 1)))
    # 5. noise, relative to the power of the impaired frame itself
    if cfg.awgn:
        out = add_awgn(out, snr_db, rngs["awgn"])
    return out

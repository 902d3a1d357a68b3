"""RML2016.10a-style synthetic dataset: :func:`synthesize` returns a :class:`SignalDataset`.

Recipe (RML2016.10a's GNU Radio recipe, O'Shea and West 2016, with its known faults fixed; docs/METHOD.md,
"Data"): 11 modulations at 8 samples/symbol (:mod:`amrlib.data.modulation`), a dynamic channel at 200 kHz
with sample-rate and carrier-frequency offset random walks, Rician K=4 multipath fading and AWGN at a
correctly defined SNR (:mod:`amrlib.data.channel`), frames cut at random offsets past all filter transients, each frame
normalised to unit mean power per complex sample *after* the noise.

Reproducibility: every (class, SNR) key draws from its own generators, derived from
``np.random.SeedSequence(seed, spawn_key=(class index in RML2016A_CLASSES, snr mod 2**32, role))``
with one role per random stream (source data, frame offsets, each impairment, noise). So the same
seed gives identical bytes; a subset of classes or SNRs gives the same frames for the keys it shares;
and switching an impairment off leaves every other random draw unchanged (the noise added to a frame
is the same with or without, say, CFO). Frames of one key do depend on ``frames_per_key``,
``frame_length`` and ``samples_per_symbol`` (all frames of a key are generated as one 2-D array).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from amrlib.data.channel import ChannelConfig, apply_channel, margin
from amrlib.data.dataset import SignalDataset
from amrlib.data.modulation import ModulationConfig, config_dict, modulate
from amrlib.names import RML2016A_CLASSES  # noqa: F401  (re-exported)

GENERATOR_VERSION = "1.0.0"


#: independent random streams of one key, in spawn order (never reorder: it would change the data)
ROLES = ("source", "offset", "sro", "fading", "cfo", "phase", "awgn")


def key_rngs(seed: int, class_name: str, snr: int) -> dict[str, np.random.Generator]:
    """One independent generator per role for the key (``class_name``, ``snr``)."""
    cls = RML2016A_CLASSES.index(class_name)
    return {role: np.random.default_rng(np.random.SeedSequence(
        int(seed), spawn_key=(cls, int(snr) % 2 ** 32, i))) for i, role in enumerate(ROLES)}


def offset_slack(samples_per_symbol: int) -> int:
    """Range of the random frame start (4 symbols): random symbol timing and content offset."""
    return 4 * int(samples_per_symbol)


def synthesize_key(class_name: str, snr: int, n: int, frame_length: int = 128, seed: int = 0,
                   channel: ChannelConfig | None = None, samples_per_symbol: int = 8,
                   sample_rate: float = 200e3,
                   modulation: ModulationConfig | None = None) -> np.ndarray:
    """``n`` energy-normalised complex128 frames ``[n, frame_length]`` of one (class, SNR) key."""
    channel = ChannelConfig() if channel is None else channel
    rngs = key_rngs(seed, class_name, snr)
    edge = margin(channel, frame_length, sample_rate)
    slack = offset_slack(samples_per_symbol)
    row_length = frame_length + 2 * edge + slack
    rows = modulate(class_name, n, row_length, rngs["source"], samples_per_symbol, sample_rate,
                    modulation or ModulationConfig())
    starts = edge + rngs["offset"].integers(0, slack + 1, size=n)
    frames = apply_channel(rows, starts, frame_length, snr, sample_rate, channel, rngs)
    power = np.mean(np.abs(frames) ** 2, axis=-1, keepdims=True)
    return frames / np.sqrt(np.maximum(power, np.finfo(float).tiny))


def _check(frames_per_key: int, frame_length: int, snrs: list[int], classes: list[str], seed: int,
           samples_per_symbol: int) -> None:
    if int(frames_per_key) < 0 or int(frame_length) < 1 or int(samples_per_symbol) < 2:
        raise ValueError("need frames_per_key >= 0, frame_length >= 1 and samples_per_symbol >= 2")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    unknown = [c for c in classes if c not in RML2016A_CLASSES]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; known: {RML2016A_CLASSES}")
    if len(set(classes)) != len(classes) or len(set(snrs)) != len(snrs):
        raise ValueError("classes and snrs must not repeat")


def synthesize(frames_per_key: int = 100, frame_length: int = 128,
               snrs: Iterable[int] = range(-20, 20, 2), classes: Sequence[str] | None = None,
               seed: int = 0, channel: ChannelConfig | None = None, samples_per_symbol: int = 8,
               sample_rate: float = 200e3,
               modulation: ModulationConfig | None = None) -> SignalDataset:
    """Generate ``frames_per_key`` frames for every (class, SNR) key.

    Returns a :class:`SignalDataset` with ``iq`` float32 ``[n, 2, frame_length]`` (row 0 = I,
    row 1 = Q), ``labels`` indexing ``classes`` (the requested order, default all 11 of
    :data:`RML2016A_CLASSES`), ``snrs`` in dB, frames ordered by class, then SNR, and the full
    generator settings in ``meta["generator"]`` (JSON-able).
    """
    classes = list(RML2016A_CLASSES if classes is None else classes)
    snr_list = [int(s) for s in snrs]
    channel = ChannelConfig() if channel is None else channel
    modulation = ModulationConfig() if modulation is None else modulation
    _check(frames_per_key, frame_length, snr_list, classes, seed, samples_per_symbol)
    n, total = int(frames_per_key), int(frames_per_key) * len(classes) * len(snr_list)
    iq = np.empty((total, 2, int(frame_length)), dtype=np.float32)
    labels = np.empty(total, dtype=np.int64)
    snr_out = np.empty(total, dtype=np.int64)
    at = 0
    for label, name in enumerate(classes):
        for snr in snr_list:
            frames = synthesize_key(name, snr, n, int(frame_length), seed, channel,
                                    int(samples_per_symbol), sample_rate, modulation)
            iq[at:at + n, 0] = frames.real
            iq[at:at + n, 1] = frames.imag
            labels[at:at + n] = label
            snr_out[at:at + n] = snr
            at += n
    generator = {
        "name": "amrlib.data.synth", "version": GENERATOR_VERSION, "seed": int(seed),
        "frames_per_key": n, "frame_length": int(frame_length), "snrs": snr_list,
        "classes": classes, "samples_per_symbol": int(samples_per_symbol),
        "sample_rate": float(sample_rate), "offset_slack": offset_slack(samples_per_symbol),
        "snr_definition": "mean |s|^2 over the frame / noise power per complex sample, "
                          "measured per frame after all other impairments",
        "normalisation": "each frame scaled to mean |x|^2 = 1 after noise",
        "rng": "SeedSequence(seed, spawn_key=(RML2016A_CLASSES index, snr mod 2**32, role index))",
        "roles": list(ROLES),
        "channel": channel.to_dict(), "modulation": config_dict(modulation),
    }
    meta = {"source": "synthetic", "format": "synthetic", "generator": generator}
    return SignalDataset(iq, labels, snr_out, classes, meta)

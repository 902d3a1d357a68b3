"""Benchmark the lazy RML2018 reader: throughput and peak memory as the file grows.

For each requested size the script writes an RML2018.01a-layout HDF5 file (X float32 [N, 1024, 2],
Y one-hot int64 [N, 24], Z int64 [N, 1], classes stored contiguously like the real file; random samples)
in bounded chunks, then reads every frame through ``load_dataset(path).iq`` in batches of ``--batch``
frames, once in file order and once in random order, and reports frames/s and peak RSS. Writer and
reader each run in a fresh child process, so ``ru_maxrss`` is the peak of that phase alone: a flat
reader peak across sizes shows memory stays bounded.

``--cold`` drops the file from the page cache (fsync + posix_fadvise DONTNEED) before each read pass,
so the figures include disk reads; without it the just-written file is usually still cached.

Example::

    python bench/bench_reader.py --gb 0.5 3 --dir /tmp
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

FRAME_BYTES = 1024 * 2 * 4
NUM_CLASSES = 24


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def write_file(path: str, gb: float, chunk_frames: int = 4096, seed: int = 0) -> dict:
    import h5py

    n = max(NUM_CLASSES, int(gb * 2**30 // FRAME_BYTES) // NUM_CLASSES * NUM_CLASSES)
    per_class = n // NUM_CLASSES
    snr_values = np.arange(-20, 32, 2)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        x = f.create_dataset("X", shape=(n, 1024, 2), dtype=np.float32)
        y = f.create_dataset("Y", shape=(n, NUM_CLASSES), dtype=np.int64)
        z = f.create_dataset("Z", shape=(n, 1), dtype=np.int64)
        eye = np.eye(NUM_CLASSES, dtype=np.int64)
        for start in range(0, n, chunk_frames):
            rows = np.arange(start, min(n, start + chunk_frames))
            x[rows[0]:rows[-1] + 1] = rng.standard_normal((len(rows), 1024, 2), dtype=np.float32)
            labels = rows // per_class
            y[rows[0]:rows[-1] + 1] = eye[labels]
            within = rows - labels * per_class
            z[rows[0]:rows[-1] + 1, 0] = snr_values[within * len(snr_values) // per_class]
    return {"phase": "write", "frames": n, "file_gb": os.path.getsize(path) / 2**30,
            "seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}


def read_file(path: str, batch: int, cold: bool, seed: int = 0) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import psutil

    from amrlib.data.readers import load_dataset

    proc = psutil.Process()
    base = peak_rss_mb()
    t0 = time.perf_counter()
    ds = load_dataset(path)
    open_s = time.perf_counter() - t0
    assert ds.meta["format"] == "rml2018", ds.meta
    n = len(ds)
    out = {"phase": "read", "frames": n, "format": ds.meta["format"], "open_labels_s": open_s,
           "rss_before_open_mb": base}
    checksum = 0.0
    for mode in ("sequential", "random"):
        if cold:
            drop_cache(path)
        order = np.arange(n) if mode == "sequential" else np.random.default_rng(seed).permutation(n)
        sample_rss = 0.0
        t0 = time.perf_counter()
        for b, start in enumerate(range(0, n, batch)):
            frames = ds.iq[order[start:start + batch]]
            checksum += float(frames[0, 0, 0])
            if b % 16 == 0:
                sample_rss = max(sample_rss, proc.memory_info().rss / 2**20)
        secs = time.perf_counter() - t0
        out[mode] = {"seconds": secs, "frames_per_s": n / secs, "mb_per_s": n * FRAME_BYTES / secs / 2**20,
                     "max_sampled_rss_mb": sample_rss}
    out["peak_rss_mb"] = peak_rss_mb()
    out["checksum"] = checksum
    return out


def child(args) -> None:
    if args.phase == "write":
        res = write_file(args.path, args.gb[0])
    else:
        res = read_file(args.path, args.batch, args.cold)
    print("RESULT " + json.dumps(res))


def run_child(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *argv],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"child {argv} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, nargs="+", default=[0.5, 3.0], help="file sizes in GiB of X")
    ap.add_argument("--dir", default="/tmp", help="where to write the temporary files")
    ap.add_argument("--batch", type=int, default=1024, help="frames per read")
    ap.add_argument("--cold", action="store_true", help="drop the file from the page cache before each pass")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--phase", choices=["write", "read"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    rows = []
    for gb in args.gb:
        path = os.path.join(args.dir, f"bench_rml2018_{gb:g}gb.hdf5")
        try:
            w = run_child("--phase", "write", "--path", path, "--gb", str(gb))
            r = run_child("--phase", "read", "--path", path, "--batch", str(args.batch),
                          *(["--cold"] if args.cold else []))
        finally:
            if not args.keep and os.path.exists(path):
                os.remove(path)
        rows.append((gb, w, r))
        print(json.dumps({"gb": gb, "write": w, "read": r}), flush=True)
    print(f"\n{'X GiB':>6} {'frames':>8} {'write s':>8} {'write RSS':>10} {'open+Y s':>9} "
          f"{'seq fr/s':>9} {'seq MB/s':>9} {'rand fr/s':>9} {'rand MB/s':>9} {'read RSS':>9}")
    for gb, w, r in rows:
        print(f"{w['file_gb']:6.2f} {w['frames']:8d} {w['seconds']:8.1f} {w['peak_rss_mb']:8.0f}MB "
              f"{r['open_labels_s']:9.2f} {r['sequential']['frames_per_s']:9.0f} {r['sequential']['mb_per_s']:9.0f} "
              f"{r['random']['frames_per_s']:9.0f} {r['random']['mb_per_s']:9.0f} {r['peak_rss_mb']:7.0f}MB")


if __name__ == "__main__":
    main()

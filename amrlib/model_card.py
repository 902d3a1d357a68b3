"""Model cards: one Markdown page per model that says what it does, on what data, how small it is, how
accurate per SNR, how fast on the measuring machine, how to load it, and where it should not be trusted.

:func:`render_model_card` is a pure function of a JSON-able ``info`` dict (no I/O); :func:`write_model_card`
draws the card's figures with :mod:`amrlib.plots` beside it and writes ``model_card.md``. ``info`` keys:

``name``, ``version`` (str or None), ``role`` ("base" | "pruned"), ``method``; ``classes``, ``frame_length``;
``data``: ``{"path", "md5", "dvc_file"?, "synthetic"?: generator settings or None, "split"?}``;
``model``: ``{"arch", "macs", "params"}``; ``parent``: ``{"name", "version", "arch"?, "macs", "params"}`` or None;
``plan`` (the pruning plan, optional); ``evaluation``: the test evaluation (``accuracy``,
``high_snr_accuracy``, ``per_snr``, ``confusion``, ``latency``, ``frames``, ``machine``?, ``vs_reference``?);
``reference``: the parent's evaluation or None; ``diagnosis``: LaCD's (optional); ``lineage``:
``{"git_commit", "flow_run_id", "mlflow_run_id", "registry_uri"}``; ``high_snr_db``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from . import plots

FIGURES = {"accuracy_vs_snr": "accuracy_vs_snr.png", "confusion": "confusion_matrix.png",
           "channel_widths": "channel_widths.png", "probe_curve": "probe_curve.png"}
SECTIONS = ("Task", "Data", "Architecture", "Compression", "Accuracy", "Latency", "How to load it", "Lineage",
            "Limits")


def widths_of(arch: dict) -> dict[str, int]:
    """{channel group: channels} of an architecture spec (a network is built only to read its structure)."""
    from .models import build_from_arch
    return plots.group_widths(build_from_arch(arch))


def removed_blocks(plan: dict | None) -> list[str]:
    return [b for st in (plan or {}).get("stages", []) if st.get("stage") == "layer" for b in st.get("removed", [])]


def _pct(x) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def _num(x) -> str:
    return "-" if x is None else f"{int(x):,}"


def _acc(x) -> str:
    return "-" if x is None else f"{float(x):.4f}"


def _title(info: dict) -> str:
    return f"{info['name']}" + (f" v{info['version']}" if info.get("version") else "")


def _architecture(info: dict) -> list[str]:
    model, parent, plan = info["model"], info.get("parent"), info.get("plan")
    arch = model["arch"]
    out = [f"`{arch.get('name')}` (family `{arch.get('family')}`): {_num(model['params'])} trainable parameters, "
           f"{_num(model['macs'])} MACs per frame (convolutions and linear layers)."]
    parent_arch = (plan or {}).get("parent_arch") or (parent or {}).get("arch")
    if parent_arch:
        before, after = widths_of(parent_arch), widths_of(arch)
        out += ["", "| channel group | parent | this model |", "|---|---:|---:|"]
        out += [f"| `{g}` | {w} | {after.get(g, 'removed')} |" for g, w in before.items()]
        removed = removed_blocks(plan)
        out += ["", f"Blocks removed ({len(removed)}): " + (", ".join(f"`{b}`" for b in removed) or "none") + "."]
        if "channel_widths" in info.get("figures", {}):
            out += ["", f"![channel widths before / after]({info['figures']['channel_widths']})"]
        if "probe_curve" in info.get("figures", {}):
            out += ["", f"![linear-probe accuracy per block, removed blocks marked]({info['figures']['probe_curve']})"]
    else:
        out += ["", "Not pruned (the parent network of its pruned versions)."]
    return out


def _compression(info: dict) -> list[str]:
    parent, model = info.get("parent"), info["model"]
    if not parent:
        return ["No compression: this is an unpruned network."]
    vs = info["evaluation"].get("vs_reference") or {}
    speed = vs.get("speedup_b1")
    return ["| | parent | this model | reduction |", "|---|---:|---:|---:|",
            f"| MACs per frame | {_num(parent['macs'])} | {_num(model['macs'])} | "
            f"{_pct(1 - model['macs'] / parent['macs'])} |",
            f"| trainable parameters | {_num(parent['params'])} | {_num(model['params'])} | "
            f"{_pct(1 - model['params'] / parent['params'])} |",
            "", f"Parent: `{parent['name']}` v{parent.get('version', '?')}. Test accuracy drop against it: "
            f"{_acc(vs.get('accuracy_drop'))}" + (f"; batch-1 speed-up {speed:.2f}x." if speed else ".")]


def _accuracy(info: dict) -> list[str]:
    ev, ref = info["evaluation"], info.get("reference")
    hi = info.get("high_snr_db", 10)
    out = [f"Test split ({_num(ev.get('frames'))} frames, never used for training or model selection): "
           f"accuracy **{_acc(ev['accuracy'])}** over all SNRs, **{_acc(ev.get('high_snr_accuracy'))}** at "
           f">= {hi} dB"
           + (f" (parent: {_acc(ref['accuracy'])} / {_acc(ref.get('high_snr_accuracy'))})." if ref else "."),
           ""]
    per = {int(k): v for k, v in ev["per_snr"].items()}
    rper = {int(k): v for k, v in (ref or {}).get("per_snr", {}).items()}
    if ref:
        out += ["| SNR (dB) | parent | this model | difference |", "|---:|---:|---:|---:|"]
        out += [f"| {s} | {_acc(rper.get(s))} | {_acc(a)} | "
                f"{'-' if s not in rper else f'{a - rper[s]:+.4f}'} |" for s, a in sorted(per.items())]
    else:
        out += ["| SNR (dB) | accuracy |", "|---:|---:|"] + [f"| {s} | {_acc(a)} |" for s, a in sorted(per.items())]
    figs = info.get("figures", {})
    for key, alt in (("accuracy_vs_snr", "accuracy vs SNR"), ("confusion", "confusion matrix (test, row-normalised)")):
        if key in figs:
            out += ["", f"![{alt}]({figs[key]})"]
    return out


def _latency(info: dict) -> list[str]:
    ev = info["evaluation"]
    lat, m = ev.get("latency") or {}, ev.get("machine") or {}
    if not lat:
        return ["Not measured."]
    threads = {v.get("threads") for v in lat.values()}
    where = (f"{m.get('cpu', 'unknown CPU')}, {m.get('cores', '?')} logical cores, {m.get('os', '')}, "
             f"PyTorch {m.get('torch', '?')}") if m else "the machine that ran the evaluation (not recorded)"
    out = [f"Measured on {where}; PyTorch eager on the CPU, {'/'.join(str(t) for t in sorted(threads))} "
           f"thread{'s' if threads != {1} else ''}, median of repeated forward passes:", "",
           "| batch | median latency (ms) | frames/s |", "|---:|---:|---:|"]
    for v in sorted(lat.values(), key=lambda v: v["batch_size"]):
        out.append(f"| {v['batch_size']} | {1e3 * v['median_s']:.3f} | {v['frames_per_s']:,.0f} |")
    return out


def _portable_uri(uri: str) -> tuple[str, str]:
    """The tracking URI as a reader of the card can use it: a local store's absolute path (this machine's
    checkout) becomes the project-relative ``sqlite:///mlflow/mlflow.db`` (run from the repository root); a
    server's URL stays."""
    for scheme in ("sqlite:///", "file://"):
        if uri.startswith(scheme):
            path = PurePosixPath(uri.removeprefix(scheme))
            rel = "/".join(path.parts[-2:]) if path.is_absolute() else str(path)
            return f"{scheme}{rel}", "the project's MLflow store, relative to the repository root"
    return uri, "the MLflow tracking server this version was registered with"


def _loading(info: dict) -> list[str]:
    ref = f"models:/{info['name']}/{info['version']}" if info.get("version") else f"models:/{info['name']}@champion"
    uri, where = _portable_uri((info.get("lineage") or {}).get("registry_uri", "<tracking URI>"))
    ref_cli = f"{info['name']}/{info['version']}" if info.get("version") else f"{info['name']}@champion"
    return ["```python", "import os, mlflow, numpy as np", f"# {where}; MLFLOW_TRACKING_URI overrides it",
            f"mlflow.set_tracking_uri(os.environ.get('MLFLOW_TRACKING_URI', {uri!r}))",
            f"model = mlflow.pyfunc.load_model({ref!r})",
            f"logits = model.predict(iq.astype(np.float32))   # [n, 2, {info['frame_length']}] -> "
            f"[n, {len(info['classes'])}]",
            "table = model.predict(iq.astype(np.float32), params={'output': 'classes'})   # class, probabilities",
            "classes = model.metadata.metadata['classes']", "```", "",
            f"Over HTTP: `amr-prune serve-model {ref_cli} --port 5001`, then POST frames to "
            "`http://127.0.0.1:5001/invocations`.", "",
            "No pickle is involved: the weights are the `checkpoint` artefact (architecture JSON + state dict, "
            "`amrlib.models.load_model`, read with `torch.load(weights_only=True)`). As ONNX (dynamic batch, "
            "checked against PyTorch with ONNX Runtime):", "",
            f"```bash\namr-prune export {ref_cli} --onnx model.onnx\n```"]


def _lineage(info: dict) -> list[str]:
    lin, data, parent = info.get("lineage") or {}, info["data"], info.get("parent")
    rows = [("method", info.get("method")), ("data md5", data.get("md5")), ("git commit", lin.get("git_commit")),
            ("Prefect flow run", lin.get("flow_run_id")), ("MLflow run", lin.get("mlflow_run_id")),
            ("parent", f"{parent['name']} v{parent.get('version', '?')}" if parent else "none")]
    return ["| | |", "|---|---|"] + [f"| {k} | `{v}` |" for k, v in rows if v]


def _limits(info: dict) -> list[str]:
    ev, data = info["evaluation"], info["data"]
    k = len(info["classes"])
    out = [f"- Judged only on the test split of `{data['path']}` (md5 `{data.get('md5')}`): accuracy on other "
           f"recordings, receivers, sample rates or channel conditions is unknown.",
           f"- Inputs must be float32 IQ frames `[n, 2, {info['frame_length']}]`, energy-normalised like the "
           f"training data. It always answers one of its {k} classes: there is no reject option for an unknown "
           f"modulation or for noise."]
    if data.get("synthetic"):
        out.append("- The data is synthetic (`amrlib.data.synth`, settings under Data): accuracy on real "
                   "over-the-air signals will differ.")
    per = {int(s): a for s, a in ev["per_snr"].items()}
    weak = [s for s, a in sorted(per.items()) if a < 2 / k]
    if weak:
        out.append(f"- At {', '.join(str(s) for s in weak)} dB its accuracy is below twice chance "
                   f"({2 / k:.3f}); do not rely on single-frame decisions there.")
    vs = ev.get("vs_reference") or {}
    if info.get("parent") and vs.get("accuracy_drop") is not None and vs["accuracy_drop"] > 0:
        out.append(f"- It is {100 * vs['accuracy_drop']:.2f} points less accurate than its parent on this test split.")
    out.append("- Latency figures hold for the machine and thread count above; other CPUs, batch sizes and "
               "runtimes (ONNX Runtime, GPUs) differ.")
    return out


def render_model_card(info: dict[str, Any]) -> str:
    """The Markdown model card of ``info`` (see the module docstring for its keys)."""
    data = info["data"]
    classes = info["classes"]
    snrs = sorted(int(s) for s in info["evaluation"]["per_snr"])
    head = [f"# Model card: {_title(info)}", "",
            f"{'Pruned' if info.get('parent') else 'Unpruned'} automatic-modulation-recognition network "
            f"({info.get('method')}), registered by amr-prune."]
    body = {
        "Task": [f"Classify one IQ frame of {info['frame_length']} complex samples (float32 `[2, "
                 f"{info['frame_length']}]`: I and Q rows) into one of {len(classes)} modulations: "
                 + ", ".join(classes) + ". The output is one logit per class."],
        "Data": [f"`{data['path']}`" + (f", tracked by `{data['dvc_file']}`" if data.get("dvc_file") else "")
                 + f", md5 `{data.get('md5')}`; SNRs {snrs[0]} to {snrs[-1]} dB."
                 + (f" Split (train/val/test fractions, seed): {json.dumps(data['split'])}."
                    if data.get("split") else "")
                 + (" Synthetic, generator settings: `" + json.dumps(data["synthetic"]) + "`."
                    if data.get("synthetic") else "")],
        "Architecture": _architecture(info), "Compression": _compression(info), "Accuracy": _accuracy(info),
        "Latency": _latency(info), "How to load it": _loading(info), "Lineage": _lineage(info),
        "Limits": _limits(info)}
    lines = head
    for section in SECTIONS:
        lines += ["", f"## {section}", "", *body[section]]
    return "\n".join(lines) + "\n"


def write_model_card(info: dict[str, Any], directory: str | os.PathLike) -> dict[str, Any]:
    """Draw the card's figures into ``directory`` and write ``model_card.md`` there.

    Returns ``{"card": path, "figures": {key: path}}``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ev, ref, title = info["evaluation"], info.get("reference"), _title(info)
    figs: dict[str, Path] = {}
    curves = {f"{title} ({ev['accuracy']:.3f})": ev["per_snr"]}
    if ref:
        parent = info.get("parent") or {}
        curves[f"parent {parent.get('name', '')} ({ref['accuracy']:.3f})"] = ref["per_snr"]
    figs["accuracy_vs_snr"] = plots.accuracy_vs_snr(curves, d / FIGURES["accuracy_vs_snr"],
                                                    f"{title}: test accuracy vs SNR")
    if ev.get("confusion"):
        figs["confusion"] = plots.confusion_matrix(ev["confusion"], info["classes"], d / FIGURES["confusion"],
                                                   f"{title}: confusion (test, row-normalised)")
    parent_arch = (info.get("plan") or {}).get("parent_arch")
    if parent_arch:
        before, after = widths_of(parent_arch), widths_of(info["model"]["arch"])
        figs["channel_widths"] = plots.channel_widths(before, {g: after.get(g, 0) for g in before},
                                                      d / FIGURES["channel_widths"],
                                                      "Channels per group: parent / this model (0: block removed)")
    if info.get("diagnosis"):
        figs["probe_curve"] = plots.probe_curve({"LaCD": info["diagnosis"]["blocks"]}, d / FIGURES["probe_curve"])
    card = d / "model_card.md"
    card.write_text(render_model_card({**info, "figures": {k: p.name for k, p in figs.items()}}))
    return {"card": card, "figures": figs}

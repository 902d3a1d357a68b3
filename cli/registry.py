"""``amr-prune models`` (registered versions, metrics, aliases) and ``amr-prune lineage NAME VERSION``;
plus :func:`load_registered`, the one way the CLI loads a registered model (export, bench-latency)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from .common import CONFIG, JSON, ModelRef, console, load_cfg, parse_model_ref, print_json


def models(config: str = CONFIG,
           name: Optional[str] = typer.Option(None, "--name", help="only this registered model"),
           as_json: bool = JSON) -> None:
    """Registered versions of every model in the tracking store, with their metrics and aliases."""
    from flows.report import print_registry
    from tracking.lineage import check_store
    from tracking.registry import registry_state
    from tracking.runs import client_for
    cfg = load_cfg(config)
    uri = cfg.tracking_uri()
    check_store(uri)
    names = [name] if name else sorted(m.name for m in client_for({"uri": uri}).search_registered_models())
    if as_json:
        print_json(registry_state(uri, names))
    else:
        print_registry(cfg, names)


def lineage(name: str = typer.Argument(..., help="registered model name (e.g. amr-resnet20-fcos), or NAME@ALIAS",
                                      metavar="NAME"),
            version: Optional[str] = typer.Argument(None, help="version number, or @ALIAS (e.g. @champion)",
                                                    metavar="VERSION|@ALIAS"),
            config: str = CONFIG, as_json: bool = JSON) -> None:
    """Where a version came from: data md5, git commit, runs, parent chain, gate decision, plan summary.

    `amr-prune lineage amr-resnet20-fcos @champion`, `... amr-resnet20-fcos@champion` and `... amr-resnet20-fcos 3`
    are the same kind of request."""
    name, version = _name_and_version(name, version)
    from tracking.lineage import lineage as read_lineage
    from tracking.lineage import resolve_version
    uri = load_cfg(config).tracking_uri()
    if version.startswith("@"):
        version = str(resolve_version(uri, name, alias=version[1:]).version)
    info = read_lineage(uri, name, version)
    if as_json:
        print_json(info)
        return
    _print_lineage(info)


def _name_and_version(name: str, version: str | None) -> tuple[str, str]:
    """``NAME VERSION``, ``NAME @ALIAS`` or ``NAME@ALIAS`` / ``NAME/VERSION`` -> (name, "3" or "@alias")."""
    from tracking.lineage import RegistryError
    if version is None:
        if "@" in name or "/" in name:
            ref = parse_model_ref(name)
            return ref.name, f"@{ref.alias}" if ref.alias else str(ref.version)
        raise RegistryError(f"lineage {name}: which version?",
                            hint=f"give a version number or an alias: `amr-prune lineage {name}@champion` or "
                                 f"`amr-prune lineage {name} 1`")
    if version.startswith("@") or version.isdigit():
        return name, version
    raise RegistryError(f"lineage {name} {version}: {version!r} is neither a version number nor an @alias",
                        hint=f"an alias takes an @: `amr-prune lineage {name}@{version}` (or "
                             f"`amr-prune lineage {name} @{version}`)")


def _print_lineage(info: dict) -> None:
    console.rule(f"{info['name']} v{info['version']}"
                 + (f"  ({', '.join(info['aliases'])})" if info["aliases"] else ""))
    rows = [("method", info["method"]), ("role", info["role"]), ("architecture", info["arch"]),
            ("data", f"{info['data_path']} (md5 {info['data_md5']}, {info['data_dvc_file']})"),
            ("git commit", info["git_commit"]), ("Prefect flow run", info["flow_run_id"]),
            ("MLflow run", info["mlflow_run_id"]), ("model card", info.get("model_card"))]
    rows += [(k.replace("_", " "), f"{v:,.0f}" if k in ("macs", "params") else f"{v:.4f}")
             for k, v in info["metrics"].items()]
    if info["gate"]:
        rows.append(("gate", f"passed={info['gate'].get('passed')} ({info['gate'].get('reasons', '')})"))
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")                  # the console prints no markup: registry text reads as written
    table.add_column()
    for k, v in rows:
        if v:
            table.add_row(k, str(v))
    console.print(table)
    if info["parents"]:
        chain = Table(title="parent chain", title_justify="left")
        for col in ("model", "version", "method", "aliases", "test acc", "MACs", "data md5", "git"):
            chain.add_column(col)
        for p in info["parents"]:
            m = p.get("metrics", {})
            chain.add_row(p["name"], p["version"], p.get("method") or "-", ", ".join(p.get("aliases", [])) or "-",
                          f"{m['test_accuracy']:.4f}" if "test_accuracy" in m else "-",
                          f"{m['macs']:,.0f}" if "macs" in m else "-", (p.get("data_md5") or "-")[:8],
                          (p.get("git_commit") or "-")[:8])
        console.print(chain)
    else:
        console.print("parent chain: none (an unpruned model)")
    plan = info.get("plan")
    if plan:
        console.print(Text.assemble(("plan", "bold"), f" ({plan.get('method') or 'pruning'}): {plan['parent_arch']} "
                                    f"-> {plan['arch']}"))
        for st in plan["stages"]:
            if st["stage"] == "channel":
                console.print(f"  channel stage: {st['groups_shrunk']}/{st['groups']} channel groups shrunk, "
                              f"{st['channels_before']:,} -> {st['channels_after']:,} channels; settings "
                              f"{st['settings']}")
            elif st["stage"] == "layer":
                console.print(f"  layer stage ({st.get('method')}): {len(st['removed'])} blocks removed: "
                              f"{', '.join(st['removed']) or 'none'}")
    else:
        console.print("plan: none (not pruned)")


def load_registered(config: str, ref: ModelRef):
    """(model, ModelVersion) of a registered version, its checkpoint downloaded to a temporary folder."""
    import mlflow
    from amrlib.models import load_model
    from tracking.lineage import resolve_version
    from tracking.registry import download_checkpoint
    uri = load_cfg(config).tracking_uri()
    mv = resolve_version(uri, ref.name, alias=ref.alias, version=ref.version)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with tempfile.TemporaryDirectory() as d:
        net = load_model(download_checkpoint(ref.name, str(mv.version), Path(d)))
    return net, mv

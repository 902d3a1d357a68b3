"""No code path deserialises untrusted bytes with pickle, and no credential is committed.

The project's own source (every package, bench, scripts) is parsed with ``ast`` and every call or
reference that unpickles is refused: ``pickle.load(s)`` / ``Unpickler`` (except a subclass that
overrides ``find_class`` — the restricted dataset unpickler), ``torch.load`` without
``weights_only=True``, ``np.load(..., allow_pickle=True)``, ``serialization_format="pickle"`` (MLflow),
a pickle result serializer (Prefect), ``yaml.load`` / ``yaml.unsafe_load``, and the usual pickle
wrappers (joblib, dill, cloudpickle, shelve, marshal, pandas.read_pickle). Each rule is checked against a
snippet that breaks it, so the scan itself is tested."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("amrlib", "settings", "datastore", "tracking", "stages", "tasks", "flows", "cli", "bench", "scripts")

_PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal",
                   "jsonpickle"}
_LOADERS = {"load", "loads", "Unpickler", "open", "read_pickle", "unsafe_load", "full_load", "load_all"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _const(node) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def scan(source: str, where: str = "<snippet>") -> list[str]:
    """Problems in one Python source text, as ``where:line: what``."""
    tree = ast.parse(source)
    problems: list[str] = []
    aliases: dict[str, str] = {}          # local name -> module.name it was imported as
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    safe_unpicklers = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
                       and any(_dotted(b).endswith("Unpickler") for b in n.bases)
                       and any(isinstance(f, ast.FunctionDef) and f.name == "find_class" for f in n.body)}

    def resolve(name: str) -> str:
        head, _, rest = name.partition(".")
        full = aliases.get(head, head)
        return f"{full}.{rest}" if rest else full

    def report(node, what):
        problems.append(f"{where}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for b in node.bases:
                if resolve(_dotted(b)).split(".")[-1] == "Unpickler" and node.name not in safe_unpicklers:
                    report(node, f"class {node.name} subclasses an Unpickler without a restricting find_class")
        if not isinstance(node, ast.Call):
            continue
        name = resolve(_dotted(node.func))
        module, _, func = name.rpartition(".")
        if module.split(".")[0] in _PICKLE_MODULES and func in _LOADERS:
            report(node, f"{name}() unpickles")
        if name in ("torch.load", "torch.serialization.load"):
            wo = _kw(node, "weights_only")
            if wo is None or _const(wo) is not True:
                report(node, "torch.load without weights_only=True")
        if name in ("numpy.load", "np.load") and _const(_kw(node, "allow_pickle")) is not False \
                and _kw(node, "allow_pickle") is not None:
            report(node, "np.load with allow_pickle")
        if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
            loader = _dotted(_kw(node, "Loader")) if _kw(node, "Loader") is not None else ""
            if "Safe" not in loader:
                report(node, f"{name} without a SafeLoader")
        if name in ("pandas.read_pickle", "pd.read_pickle"):
            report(node, "pandas.read_pickle unpickles")
        for key in ("serialization_format", "result_serializer", "serializer"):
            value = _const(_kw(node, key))
            if isinstance(value, str) and "pickle" in value:
                report(node, f"{key}={value!r}")
        if name.endswith("environ.setdefault") or name.endswith("putenv"):
            if node.args and _const(node.args[0]) == "MLFLOW_ALLOW_PICKLE_DESERIALIZATION":
                report(node, "enables MLflow pickle deserialisation")
    for node in ast.walk(tree):                # os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = ...
        if isinstance(node, ast.Subscript) and _const(getattr(node, "slice", None)) == \
                "MLFLOW_ALLOW_PICKLE_DESERIALIZATION":
            report(node, "touches MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    return problems


def project_files() -> list[Path]:
    files = []
    for d in SOURCE_DIRS:
        files += [p for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts]
    return sorted(files)


@pytest.mark.parametrize("snippet", [
    "import pickle\npickle.load(open('x', 'rb'))",
    "import pickle as p\np.loads(b'')",
    "from pickle import loads\nloads(b'')",
    "from pickle import Unpickler\nUnpickler(f).load()",
    "import pickle\nclass U(pickle.Unpickler):\n    pass",
    "import _pickle\n_pickle.loads(b'')",
    "import cloudpickle\ncloudpickle.load(f)",
    "import joblib\njoblib.load('m.pkl')",
    "import dill\ndill.loads(b'')",
    "import shelve\nshelve.open('db')",
    "import marshal\nmarshal.loads(b'')",
    "import torch\ntorch.load('m.pt')",
    "import torch\ntorch.load('m.pt', weights_only=False)",
    "import torch\ntorch.load('m.pt', map_location='cpu', weights_only=flag)",
    "import numpy as np\nnp.load('x.npz', allow_pickle=True)",
    "import yaml\nyaml.load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.Loader)",
    "import yaml\nyaml.unsafe_load(text)",
    "import pandas as pd\npd.read_pickle('x')",
    "import mlflow\nmlflow.pytorch.log_model(m, name='m', serialization_format='pickle')",
    "from prefect import task\n@task(result_serializer='pickle')\ndef f(): pass",
    "import os\nos.environ.setdefault('MLFLOW_ALLOW_PICKLE_DESERIALIZATION', 'true')",
    "import os\nos.environ['MLFLOW_ALLOW_PICKLE_DESERIALIZATION'] = 'true'",
])
def test_scanner_catches_each_unsafe_pattern(snippet):
    assert scan(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "import torch\ntorch.load('m.pt', map_location='cpu', weights_only=True)",
    "import numpy as np\nnp.load('x.npz', allow_pickle=False)\nnp.load('y.npz')",
    "import yaml\nyaml.safe_load(text)\nyaml.load(text, Loader=yaml.SafeLoader)",
    "import pickle\nclass R(pickle.Unpickler):\n    def find_class(self, m, n):\n        raise ValueError\n"
    "R(f).load()",
    "import pickle\npickle.dumps({'a': 1})",
    "from prefect import task\n@task(result_serializer='json')\ndef f(): pass",
])
def test_scanner_accepts_the_safe_forms(snippet):
    assert scan(snippet) == []


def test_project_source_never_unpickles_untrusted_bytes():
    files = project_files()
    assert len(files) > 40 and any(p.name == "safe_pickle.py" for p in files)
    problems = [p for f in files for p in scan(f.read_text(), str(f.relative_to(ROOT)))]
    assert problems == []


def test_shell_scripts_do_not_enable_pickle_loading():
    for script in (ROOT / "scripts").glob("*.sh"):
        assert "ALLOW_PICKLE" not in script.read_text(), script


# ---- credentials ------------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key assignment": re.compile(       # a 30+ character value (not "...", "<...>", "$VAR")
        r"(?i)secret_access_key\s*[=:]\s*['\"]?(?!\.\.\.|<|\$)[A-Za-z0-9/+]{30,}"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
}


def find_credentials(text: str) -> list[str]:
    return [name for name, rx in SECRET_PATTERNS.items() if rx.search(text)]


_FAKE_SECRET = "wJalrXUtnFEMI/" + "K7MDENG/bPxRfiCYEXAMPLEKEY"     # built at run time: this file stays clean


@pytest.mark.parametrize("text", [
    "aws_access_key_id = AKIA" + "IOSFODNN7EXAMPLE",
    "secret_access_key = " + _FAKE_SECRET,
    "AWS_SECRET_ACCESS_KEY: '" + _FAKE_SECRET + "'",
    "-----BEGIN OPENSSH " + "PRIVATE KEY-----",
    "token ghp_" + "a" * 36,
])
def test_credential_patterns_catch_real_looking_keys(text):
    assert find_credentials(text)


def test_no_credentials_in_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert ".dvc/config.local" not in tracked and not any(p.endswith(".env") for p in tracked)
    hits = []
    for rel in tracked:
        p = ROOT / rel
        if not p.is_file() or p.stat().st_size > 2_000_000:
            continue
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            continue
        hits += [f"{rel}: {what}" for what in find_credentials(text)]
    assert hits == []
    ignored = (ROOT / ".dvc" / ".gitignore").read_text()
    assert "/config.local" in ignored                         # DVC credentials stay out of git

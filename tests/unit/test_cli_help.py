"""--help names values the click way (TEXT, INTEGER, TEXT ... for a repeatable option, nothing for a flag), not
with Python annotations such as <bool> or <list[str]>, and no placeholder is swallowed by the markdown help."""
from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from cli import app
from cli.helpformat import readable


@pytest.mark.parametrize("label, shown", [("<str>", "TEXT"), ("<list[str]>", "TEXT ..."), ("<int range>", "INTEGER"),
                                          ("<path>", "PATH"), ("<list[float]>", "FLOAT ..."), ("KEY", "KEY")])
def test_readable(label, shown):
    assert readable(label) == shown


@pytest.mark.parametrize("command", [["--help"], ["run", "--help"], ["sweep", "--help"], ["sweep-report", "--help"],
                                     ["data", "synth", "--help"], ["serve-model", "--help"], ["lineage", "--help"],
                                     ["promote", "--help"], ["data", "remote", "--help"]])
def test_help_has_no_annotation_placeholders(command):
    out = CliRunner().invoke(app, command, env={"COLUMNS": "200"}).output
    assert not re.search(r"<(bool|str|int|float|path|list\[[a-z]+\])[^>]*>", out), out
    assert "/<" not in out and "(default: /" not in out

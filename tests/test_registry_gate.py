"""The promotion gate's decision rule (pure): accuracy drop bound and MAC-reduction target."""
from __future__ import annotations

import pytest

from tasks.gate import gate_decision

GATE = {"max_accuracy_drop": 0.02, "min_mac_reduction": 0.5}


@pytest.mark.parametrize("cand_acc, mac_red, passed, reason", [
    (0.90, 0.60, True, None),
    (0.88, 0.50, True, None),                      # both bounds inclusive
    (0.87, 0.60, False, "accuracy drop 0.0300 > allowed 0.0200"),
    (0.90, 0.40, False, "MAC reduction 0.4000 < required 0.5000"),
    (0.95, 0.60, True, None),                      # better than the reference: a negative drop
])
def test_gate_decision(cand_acc, mac_red, passed, reason):
    d = gate_decision({"accuracy": cand_acc}, {"accuracy": 0.90}, mac_red, GATE)
    assert d["passed"] is passed
    assert d["accuracy_drop"] == pytest.approx(0.90 - cand_acc)
    if reason:
        assert d["reasons"] == [reason]
    else:
        assert d["reasons"] == []


def test_both_failures_are_reported():
    d = gate_decision({"accuracy": 0.5}, {"accuracy": 0.9}, 0.1, GATE)
    assert not d["passed"] and len(d["reasons"]) == 2

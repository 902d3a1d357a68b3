"""The promotion gate's decision rule (pure): accuracy drop bound and MAC-reduction target."""
from __future__ import annotations

import pytest

from tasks.gate import gate_decision

GATE = {"max_accuracy_drop": 0.02, "min_macs_reduction": 0.5}


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


CLASSES = [f"c{i}" for i in range(11)]


@pytest.mark.parametrize("acc, reason", [
    (float("nan"), "accuracy is not a finite number (nan)"),
    (0.077, "accuracy 0.0770 below the floor 0.1818"),     # the diverged run of the report: below 1/11
])
def test_a_diverged_or_chance_level_candidate_never_passes(acc, reason):
    loose = {"max_accuracy_drop": 1.0, "min_macs_reduction": 0.0}        # even with no other bound
    d = gate_decision({"accuracy": acc, "classes": CLASSES}, {"accuracy": 0.10}, 0.9, loose)
    assert not d["passed"] and d["reasons"][0] == reason and d["floor"] == pytest.approx(2 / 11)


def test_configured_floor_and_the_champion_margin():
    d = gate_decision({"accuracy": 0.5, "classes": CLASSES}, {"accuracy": 0.5}, 0.9,
                      {**GATE, "min_accuracy": 0.6})
    assert not d["passed"] and "below the floor 0.6000" in d["reasons"][0]
    behind = gate_decision({"accuracy": 0.80, "classes": CLASSES}, {"accuracy": 0.81}, 0.9, GATE,
                           champion={"version": "3", "accuracy": 0.85})
    assert not behind["passed"] and behind["champion_accuracy"] == 0.85
    assert behind["reasons"] == ["0.0500 below the current champion v3 (0.8500) > allowed 0.0200"]
    level = gate_decision({"accuracy": 0.84, "classes": CLASSES}, {"accuracy": 0.85}, 0.9, GATE,
                          champion={"version": "3", "accuracy": 0.85})
    assert level["passed"]

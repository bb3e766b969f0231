"""Which of the protocol's comparisons a study makes, with the evidence."""

from __future__ import annotations

import re
from typing import Any

from reviewpipe.extract_arms import dn_terms
from reviewpipe.extract_doc import SHAM_CUE, STOP_WORDS, Arm, Evidence
from reviewpipe.numbers import (
    stem_word,
    word_pattern,
)
from reviewpipe.protocol import Protocol


def assign_comparison(record: dict[str, Any], arms: list[Arm],
                      protocol: Protocol) -> tuple[str, str]:
    """The protocol comparison a study makes, and the evidence that decided it.

    Each control arm is judged against the dry needling arm: sham/placebo terms → the sham
    comparison; a control whose care the dry needling arm also receives → the add-on
    comparison (the one whose ``control_terms`` say "alone"/"only"); any other treatment → the
    comparison whose ``control_terms`` it names, or the remaining "other treatment" one.
    Several control arms give several ids joined by ``;``. Returns ``("unclear", reason)``
    when there is no dry needling arm or a control arm names no treatment.
    """
    comparisons = protocol.data.get("comparisons", [])
    if not comparisons:
        return "unclear", "the protocol defines no comparisons"
    if len(arms) < 2:
        title_arms = _title_arms(record, protocol)
        if len(title_arms) < 2:
            return "unclear", "no arms found in the abstract or title"
        arms = title_arms
    dn = [a for a in arms if a.role == "dn"]
    controls = [a for a in arms if a.role == "control"]
    where = (arms[0].sentence or arms[0].evidence).snippet if (
        arms[0].sentence or arms[0].evidence) else ""
    if len(dn) != 1 or not controls:
        roles = "; ".join(f"{a.label} [{a.role}]" for a in arms)
        return "unclear", f"need one dry needling arm and a control arm, found: {roles}"

    def terms(c: dict[str, Any]) -> list[str]:
        return [t.lower() for t in c["control_terms"]]

    sham = [c for c in comparisons if {"sham", "placebo"} & set(terms(c))]
    addon = [c for c in comparisons if {"alone", "only"} & set(terms(c)) and c not in sham]
    other = [c for c in comparisons if c not in sham and c not in addon]
    ids, reasons = [], []
    for control in controls:
        label = control.label
        matched = {c["id"]: [t for t in c["control_terms"] if word_pattern(t).search(label)]
                   for c in comparisons}
        content = _care_words(label)
        if sham and matched[sham[0]["id"]]:
            choice, why = sham[0], f"control arm '{label}' names {matched[sham[0]['id']][0]!r}"
        elif addon and _adds_on(content, _care_words(dn[0].label)):
            choice, why = addon[0], (f"the dry needling arm '{dn[0].label}' gets the control "
                                     f"arm's care ('{label}') plus dry needling")
        elif other:
            best = max(other, key=lambda c: len(matched[c["id"]]))
            if matched[best["id"]]:
                why = f"control arm '{label}' names {matched[best['id']][0]!r}"
            elif content:
                why = f"control arm '{label}' is an active treatment not given with dry needling"
            else:
                return "unclear", f"control arm '{label}' does not say what it received"
            choice = best
        else:
            return "unclear", f"no protocol comparison fits control arm '{label}'"
        if choice["id"] not in ids:
            ids.append(choice["id"])
        reasons.append(f"{choice['id']}: {why}")
    return ";".join(ids), " | ".join(reasons) + (f' — arms from: "{where}"' if where else "")


def _care_words(label: str) -> set[str]:
    """Words naming what an arm received; unlike alias words, "usual care" counts."""
    keep = {"usual", "routine", "standard", "care", "conventional", "therapy", "treatment"}
    stop = {stem_word(w) for w in STOP_WORDS - keep}
    return {stem_word(w) for w in re.findall(r"[A-Za-z][A-Za-z0-9]+", label)} - stop


def _adds_on(control: set[str], dn: set[str]) -> bool:
    """Does the dry needling arm receive the control arm's care? At least half of the control's
    words recur in the dry needling arm ("stretching exercises" / "the same stretches plus DN")."""
    return bool(control) and len(control & dn) * 2 >= len(control)


def _title_arms(record: dict[str, Any], protocol: Protocol) -> list[Arm]:
    title = record.get("title") or ""
    m = re.search(r"(?:of\s+)?(?P<a>[^:]+?)\s+(?:versus|vs\.?|compared\s+with)\s+(?P<b>[^:]+?)"
                  r"(?:\s+(?:for|in|on)\s+|[:.]|$)", title, re.I)
    if not m:
        return []
    dn_patterns = dn_terms(protocol)
    out = []
    for part in (m.group("a"), m.group("b")):
        label = re.sub(r"^(?:effects?\s+of|efficacy\s+of|the)\s+", "", part.strip(), flags=re.I)
        role = "dn" if any(p.search(label) for p in dn_patterns) and not SHAM_CUE.search(
            label) else "control"
        out.append(Arm(label=label, role=role, evidence=Evidence("title", m.start(), m.end(),
                                                                 title[m.start():m.end()])))
    return out

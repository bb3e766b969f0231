"""Outcome values and adverse events read from one document, and
:func:`extract_from_text`, which reads a whole text."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from reviewpipe.extract_arms import INT_PATTERN, arm_aliases, arm_mentions, find_arms, total_n
from reviewpipe.extract_doc import (
    AE_CUE,
    BETWEEN,
    CHANGE,
    DIFF_CUE,
    NOT_OUTCOME,
    OTHER_CUE,
    SCALE_AFTER,
    SCALE_BEFORE,
    WHOLE,
    WITHIN,
    AdverseEvent,
    Arm,
    Doc,
    Evidence,
    Extraction,
    InstrumentMention,
    OutcomeValue,
    _scale,
    build_doc,
    canonical_instrument,
)
from reviewpipe.numbers import (
    DIGITS,
    NUMBER,
    Stat,
    TimeMention,
    enclosing_brackets,
    find_bare_mean_sd,
    find_p_values,
    find_stats,
    list_items,
    parse_number,
    split_clauses,
)
from reviewpipe.protocol import Protocol


@dataclass
class _Item:
    stat: Stat  # offsets relative to the document
    kind: str   # "arm" (one arm's value), "md", "p"
    arm: int | None = None
    measure: str = ""


def _items(doc: Doc, a: int, b: int) -> list[_Item]:
    sentence = doc.text[a:b]
    stats = [replace(s, start=s.start + a, end=s.end + a) for s in find_stats(sentence)]
    if re.search(r"\bmean|\bSD\b|\breduction|\bchange", sentence, re.I):
        for s in find_bare_mean_sd(sentence):
            s = replace(s, start=s.start + a, end=s.end + a)
            if all(s.end <= t.start or s.start >= t.end for t in stats):
                stats.append(s)
    items: list[_Item] = []
    for s in stats:
        if s.kind == "ci":
            before = doc.text[a:s.start + (doc.text[s.start:s.end].find(",") if doc.text[
                s.start] == "(" else 0)]
            cues = [(m.end(), "md") for m in DIFF_CUE.finditer(before)]
            cues += [(m.end(), "other") for m in OTHER_CUE.finditer(before)]
            if not cues or max(cues)[1] != "md":
                continue
            mid = re.search(r"\bfor\s+(?P<m>[^()]+?)\s*[,(\[]", doc.text[s.start:s.end])
            items.append(_Item(s, "md", measure=mid.group("m").strip() if mid else ""))
        elif s.kind in ("mean_sd", "median_iqr"):
            near = doc.text[max(a, s.start - 30):s.start].split(";")[-1]
            if NOT_OUTCOME.search(near) or re.match(r"\s*(?:years|yrs|kg\b|%)",
                                                    doc.text[s.end:s.end + 8]):
                continue
            items.append(_Item(s, "arm"))
    for m in re.finditer(r"\bmean\s+(?P<what>(?:[\w-]+\s+){0,4}?)(?:was|were|of|had\s+fallen\s+to|"
                         r"fell\s+to|decreased\s+to|dropped\s+to|rose\s+to|increased\s+to|=)\s+",
                         sentence, re.I):
        if NOT_OUTCOME.search(m.group("what")):
            continue
        pos = a + m.end()
        stop = re.search(r"[;(]|\.\s|$", doc.text[pos:b])
        end = pos + (stop.start() if stop else 0)
        for num in re.finditer(NUMBER, doc.text[pos:end]):
            s0, s1 = pos + num.start(), pos + num.end()
            if num.start() and not re.search(r"(?:,|\band)\s*$", doc.text[max(pos, s0 - 40):s0]):
                continue
            if any(t.start <= s0 < t.end for t in stats) or re.match(r"\s*(?:%|years|kg)",
                                                                     doc.text[s1:s1 + 6]):
                continue
            value = parse_number(num.group(0))
            if value is not None and "." in num.group(0):
                items.append(_Item(Stat(s0, s1, "mean", value), "arm"))
    if re.search(r"\bmean\s+ranks?\b", sentence, re.I):  # Mann-Whitney mean ranks, not means
        pair = rf"\(\s*(?P<x>{DIGITS})\s+(?:versus|vs\.?)\s+(?P<y>{DIGITS})"
        for m in re.finditer(pair, sentence):
            for key in ("x", "y"):
                items.append(_Item(Stat(a + m.start(key), a + m.end(key), "rank",
                                        parse_number(m.group(key))), "arm"))
    inside = [(s.start, s.end) for s in stats if s.kind == "ci"]
    for p in find_p_values(sentence):
        s0, s1 = a + p.start, a + p.end
        if not any(x <= s0 < y for x, y in inside):
            items.append(_Item(Stat(s0, s1, "p", p=p.text), "p"))
    return sorted(items, key=lambda i: i.stat.start)


def _unique(refs: list[tuple[int, str]]) -> list[str]:
    return list(dict.fromkeys(name for _, name in refs))


def _refs(doc: Doc, start: int, end: int) -> list[tuple[int, str]]:
    """Instrument references in ``text[start:end]``: aliases, outcome phrases tied to an
    instrument elsewhere ("first-step pain" on a VAS), and outcome words when the study has
    one instrument for that outcome ("pain" → VAS)."""
    out = [(s, name) for s, e, name in doc.mentions if start <= s and e <= end]
    spans = [(s, e) for s, e, _ in doc.mentions if start <= s and e <= end]
    aliases = list(spans)

    def qualifies(p0: int, p1: int) -> bool:
        # taken already, or a word qualifying the instrument just named ("FFI pain subscale")
        return any(x < p1 and p0 < y for x, y in spans) or any(
            0 <= p0 - y <= 15 and not re.search(r"[,;()]|\b(?:and|or)\b", doc.text[y:p0])
            for _, y in aliases)

    low = doc.text[start:end].lower()
    for phrase, name in sorted(doc.phrases.items(), key=lambda kv: -len(kv[0])):
        for m in re.finditer(rf"\b{re.escape(phrase)}\b", low):
            p0, p1 = start + m.start(), start + m.end()
            if not qualifies(p0, p1):
                out.append((p0, name))
                spans.append((p0, p1))
    named = list(dict.fromkeys(name for _, _, name in doc.mentions))
    for outcome in sorted(set(doc.outcome_of.values())):
        only = [n for n in named if doc.outcome_of[n] == outcome]
        if len(only) != 1:
            continue
        for m in re.finditer(rf"\b{re.escape(outcome)}(?:al|ing)?\b", low):
            p0, p1 = start + m.start(), start + m.end()
            if not qualifies(p0, p1):
                out.append((p0, only[0]))
    return sorted(out)


def _subject(doc: Doc, items: list[_Item], k: int, sentence: tuple[int, int],
             clause: tuple[int, int], last: list[str]) -> tuple[list[str], int]:
    """The instrument(s) a statistic is about, and where the text about it starts."""
    item, text = items[k], doc.text
    s = item.stat
    if item.measure:
        named = canonical_instrument(item.measure, doc.protocol)
        if named:
            return named[:1], clause[0]
        for phrase, name in sorted(doc.phrases.items(), key=lambda kv: -len(kv[0])):
            if phrase in item.measure.lower():
                return [name], clause[0]
        named = _unique(_refs(doc, s.start, s.end))
        if named:
            return named[:1], clause[0]
    par = enclosing_brackets(text, sentence[0], s.start) if item.kind == "p" else None
    if par:
        po, pc = par
        prev = max([i.stat.end for i in items[:k] if po < i.stat.start] + [po + 1])
        inside = _refs(doc, prev, s.start)
        if inside:  # "(VAS P = 0.732; FFI P = 0.578)"
            return [inside[-1][1]], clause[0]
        if re.match(r"\s*(?:for|in|on)\b", text[s.end:pc]) and _refs(doc, s.end, pc):
            return _unique(_refs(doc, s.end, pc)), clause[0]  # "(p = 0.001 for FHSQ and FFI)"
        group = [i for i in items if i.kind == "p" and po < i.stat.start < pc]
        if len(group) >= 2:  # "on VAS, HTI and SF-36 (P = 0.03, P = 0.006 and P = 0.002)"
            pieces = list_items(text, clause[0], po)[-len(group):]
            if len(pieces) != len(group):
                return [], po
            x, y = pieces[group.index(item)]
            return _unique(_refs(doc, x, y)), clause[0]
        opened = {enclosing_brackets(text, sentence[0], i.stat.start)
                  for i in items if i.kind == "p"}
        if len(opened - {None}) >= 2:  # "standing time (p = .002), walking distance (p <= .001)"
            x = list_items(text, clause[0], po)[-1][0] if list_items(text, clause[0], po) else po
            names = _unique(_refs(doc, x, po))
            rest = re.sub(r"\b(?:and|or|at|after|in|by|the)\b|[\s,]", "", _without_times(
                doc, x, po))
            return (names or (last if not rest else [])), x
    since = max([i.stat.end for i in items[:k] if clause[0] <= i.stat.start] + [clause[0]])
    recent = _unique(_refs(doc, since, s.start))
    if item.kind == "p" and len(recent) > 1:
        return recent, since
    for lo in (clause[0], sentence[0]):
        before = _refs(doc, lo, s.start)
        if before:
            return [before[-1][1]], clause[0]
    return [], clause[0]


def _without_times(doc: Doc, start: int, end: int) -> str:
    text = list(doc.text[start:end])
    for t in doc.times:
        if start <= t.start and t.end <= end:
            text[t.start - start:t.end - start] = " " * (t.end - t.start)
    return "".join(text)


def _time_at(doc: Doc, start: int, end: int, sentence: tuple[int, int],
             lead: int) -> list[TimeMention]:
    a, b = sentence
    usable = [t for t in doc.times if a <= t.start < b and not t.duration and not t.reference]
    before = [t for t in usable if t.start < start]
    if re.search(r"\b(?:every|all|each)\s+(?:time\s+point|follow-up|assessment)",
                 doc.text[lead:start], re.I):
        return []
    if before:
        last = before[-1]
        group = [t for t in before if t.label.split()[-1] == last.label.split()[-1]
                 and last.start - t.start < 40 and t.weeks is not None and last.weeks is not None]
        return group if len(group) > 1 and re.search(r"\band\b", doc.text[group[0].start:
                                                                         last.start]) else [last]
    after = [t for t in usable if t.start >= end and t.start - end <= 40
             and not re.search(r"[,;()]", doc.text[end:t.start])]
    if after:
        return after[:1]
    schedule = [t.weeks for t in doc.times if t.weeks is not None and not t.duration]
    if schedule and re.search(r"\b(?:end|last|final)\s+(?:of\s+(?:the\s+)?)?follow-up",
                              doc.text[a:b], re.I):
        return [TimeMention(start, start, max(schedule), "end of follow-up")]
    return []


def _assign_arms(doc: Doc, items: list[_Item], arms: list[Arm], a: int, b: int) -> None:
    arm_items = [i for i in items if i.kind == "arm"]
    if not arm_items or not arms:
        return
    mentions = arm_mentions(doc.text, a, b, arms)
    after_ok = re.compile(r"^[\s(]*(?:(?:in|after|for|with|among|on)\s+)?(?:the\s+|an?\s+)?"
                          r"(?:(?!versus\b|vs\b|than\b|and\b|or\b|but\b|compared\b)[\w-]+\s+){0,2}$",
                          re.I)
    before_ok = re.compile(r"^\s*(?:group|arm)?\s*(?:\(|:|=)\s*$|^\s*(?:group|arm)?\s+(?:was|"
                           r"were|of|had)\s*$", re.I)
    for item in arm_items:
        nxt = min([i.stat.start for i in items if i.stat.start > item.stat.start] + [b])
        for s, _, idx in mentions:
            if item.stat.end <= s < nxt and after_ok.match(doc.text[item.stat.end:s]):
                item.arm = idx
                break
        if item.arm is None:
            for _, e, idx in reversed(mentions):
                if e <= item.stat.start and before_ok.match(doc.text[e:item.stat.start]):
                    item.arm = idx
                    break
    versus = re.compile(r"^[^;()]{0,60}\b(?:versus|vs\.?|compared\s+with|against)\b[^;()]{0,25}$")
    order: list[int] = []
    k = 0
    while k + 1 < len(arm_items):  # "x versus y": a pair of arms, in the order of the last pair
        x, y = arm_items[k], arm_items[k + 1]
        if not versus.match(doc.text[x.stat.end:y.stat.start]):
            k += 1
            continue
        if len(arms) == 2:
            if x.arm is None and y.arm is not None:
                x.arm = 1 - y.arm
            elif y.arm is None and x.arm is not None:
                y.arm = 1 - x.arm
            elif x.arm is None and y.arm is None:
                near = list(dict.fromkeys(idx for _, e, idx in mentions if e <= x.stat.start))
                first = order[0] if order else (near[0] if near else None)
                if first is not None:
                    x.arm, y.arm = first, 1 - first
        if x.arm is not None and y.arm is not None:
            order = [x.arm, y.arm]
        k += 2
    if re.search(r"\brespectively\b", doc.text[a:b]):
        labelled = [i.arm for i in arm_items if i.arm is not None]
        loose = [i for i in arm_items if i.arm is None]
        if loose and labelled and len(loose) == len(labelled):
            for item, idx in zip(loose, labelled, strict=True):
                item.arm = idx
    for x, y in zip(arm_items, arm_items[1:], strict=False):  # "from A to B in group A"
        if x.arm is None and y.arm is not None and re.search(
                r"\bfrom\s*$", doc.text[a:x.stat.start]) and re.match(
                r"\s*to\s*$", doc.text[x.stat.end:y.stat.start]):
            x.arm = y.arm
    for item in arm_items:
        if item.arm is None:
            clause = next(c for c in split_clauses(doc.text, a, b)
                          if c[0] <= item.stat.start <= c[1])
            near = [idx for s, e, idx in mentions if clause[0] <= s and e <= item.stat.start]
            if near:
                item.arm = near[-1]
            elif not mentions and WHOLE.search(doc.text[a:b]):
                item.arm = -1  # the whole sample


def contrast_of(arms: list[Arm]) -> str:
    """What a between-group row compares: "<dn arm> vs <control arm>" when there are two."""
    dn = [a for a in arms if a.role == "dn"]
    controls = [a for a in arms if a.role == "control"]
    if len(dn) == 1 and len(controls) == 1:
        return f"{dn[0].label} vs {controls[0].label}"
    return "between groups"


def _values(doc: Doc, arms: list[Arm], n_total: int | None,
            n_ev: Evidence | None) -> list[OutcomeValue]:
    out: list[OutcomeValue] = []
    contrast = contrast_of(arms)
    whole = (n_total, n_ev.span if n_ev else "")
    for a, b in doc.sentences:
        items = _items(doc, a, b)
        if not items:
            continue
        _assign_arms(doc, items, arms, a, b)
        clauses = split_clauses(doc.text, a, b)
        last: list[str] = []
        for k, item in enumerate(items):
            s = item.stat
            clause = next(c for c in clauses if c[0] <= s.start <= c[1])
            names, lead = _subject(doc, items, k, (a, b), clause, last)
            if not names:
                continue
            last = names
            if item.kind != "p":
                names = names[-1:]
            times = _time_at(doc, s.start, s.end, (a, b), lead)
            prev = items[k - 1].stat if k else None
            nxt = items[k + 1].stat if k + 1 < len(items) else None
            if item.kind == "arm" and nxt and re.search(r"\bfrom\s*$", doc.text[a:s.start]) and (
                    re.match(r"\s*to\s*$", doc.text[s.end:nxt.start])):
                times = [TimeMention(s.start, s.start, None, "baseline")]  # "fell from A to B"
            elif item.kind == "arm" and prev and re.search(r"\bfrom\s*$", doc.text[
                    a:prev.start]) and re.match(r"\s*to\s*$", doc.text[prev.end:s.start]) and not [
                    t for t in times if t.weeks is not None]:
                times = [TimeMention(s.start, s.start, 0.0, "after treatment")]
            for time in times or [None]:
                for name in names:
                    row = _row(doc, item, name, time, arms, contrast, whole, (a, b), lead)
                    if row is not None:
                        out.append(row)
    return out


def _row(doc: Doc, item: _Item, name: str, time: TimeMention | None, arms: list[Arm],
         contrast: str, whole: tuple[int | None, str], sentence: tuple[int, int],
         lead: int) -> OutcomeValue | None:
    s = item.stat
    row = OutcomeValue(instrument=name, outcome=doc.outcome_of.get(name, ""),
                       evidence=doc.ev(s.start, s.end), value_type="final",
                       measure=item.measure)
    if time is not None:
        row.timepoint_weeks, row.timepoint = time.weeks, time.label
        if time.baseline:
            row.value_type = "baseline"
        if time.label == "end of follow-up":
            row.note = "time point read as the last scheduled assessment"
    row.scale = _scale(s.unit) if s.unit in ("mm", "cm") else _instrument_scale(doc, name)
    if item.kind == "md":
        row.value_type, row.contrast = "difference", contrast
        row.md, row.ci_low, row.ci_high, row.p = s.value, s.low, s.high, s.p
        row.p_span = row.evidence.span if s.p else ""
        return row
    if item.kind == "p":
        row.p, row.p_span = s.p, f"{s.start}-{s.end}"
        text = doc.text[lead:s.start]
        named = {idx for _, _, idx in arm_mentions(doc.text, lead, s.start, arms)}
        comparative = re.search(r"\b(?:greater|lower|higher|better|worse|larger|smaller|more|"
                                r"less)\b", text, re.I) and named
        if BETWEEN.search(text) or len(named) > 1 or comparative or (
                not WITHIN.search(text) and not WHOLE.search(text)):
            row.value_type, row.contrast = "difference", contrast
        else:
            row.value_type = "baseline" if row.value_type == "baseline" else "change"
            if len(named) == 1 and not WHOLE.search(text):
                set_arm(row, arms[named.pop()])
            else:
                row.contrast = "all groups"
                row.n, row.n_span = whole
        return row
    if item.arm is None:
        return None
    change = CHANGE.search(doc.text[max(sentence[0], s.start - 60):s.start])
    if s.kind == "rank":
        row.value_type, row.mean = "mean_rank", s.value
    elif s.kind == "median_iqr":
        row.median, row.iqr_low, row.iqr_high = s.value, s.low, s.high
    elif change and row.value_type != "baseline":
        row.value_type, row.mean_change, row.sd = "change", s.value, s.spread
    else:
        row.mean, row.sd = s.value, s.spread
    if row.sd is not None and re.search(r"\b(?:SEM|SE|standard\s+error)\b",
                                        doc.text[sentence[0]:sentence[1]]):
        row.se, row.sd = row.sd, None
    if item.arm == -1:
        row.contrast = "whole sample"
        row.n, row.n_span = whole
    else:
        set_arm(row, arms[item.arm])
    return row


def set_arm(row: OutcomeValue, arm: Arm) -> None:
    row.arm = arm.label
    if arm.n:
        row.n, row.n_span = arm.n, arm.n_evidence.span if arm.n_evidence else ""


def _instrument_scale(doc: Doc, name: str) -> str:
    for start, end, mention in doc.mentions:
        if mention != name:
            continue
        a, b = doc.sentence_at(start)
        after = SCALE_AFTER.match(doc.text[end:min(b, end + 20)])
        before = SCALE_BEFORE.search(doc.text[max(a, start - 40):start])
        if after or before:
            return _scale((after or before).group("s"))
    return ""


# ------------------------------------------------------------------ adverse events


def _adverse_events(doc: Doc, arms: list[Arm]) -> list[AdverseEvent]:
    out: list[AdverseEvent] = []
    for a, b in doc.sentences:
        sentence = doc.text[a:b]
        hit = AE_CUE.search(sentence)
        if not hit:
            continue
        kind_m = re.search(r"(?P<k>(?:(?:minor|major|serious|severe|mild|moderate|transient|"
                           r"short-lived|local|systemic)\s+){1,3})$", sentence[:hit.start()], re.I)
        kind = (kind_m.group("k").strip().lower() if kind_m else "any")
        mentions = arm_mentions(doc.text, a, b, arms)
        none = re.search(r"\bno\s+(?:(?:\w+\s+){0,2})(?:adverse|side|complication)|\bwithout\s+"
                         r"(?:any\s+)?(?:adverse|side|complication)|\b(?:were|was)\s+not\s+"
                         r"(?:observed|reported|recorded|seen)", sentence, re.I)
        if none:
            k = re.search(r"\b(serious|severe|major)\b", none.group(0), re.I)
            named = {idx for _, _, idx in mentions}
            arm = arms[named.pop()].label if len(named) == 1 and not WHOLE.search(
                sentence) else ""
            out.append(AdverseEvent(arm, k.group(1).lower() if k else kind, 0, None, "",
                                    doc.ev(a + none.start(), a + none.end())))
            continue
        for m in re.finditer(rf"(?P<n>{INT_PATTERN}|\ba\s+single|\bnone)(?:\s*(?:/|of|out\s+of)\s*"
                             rf"(?P<d>\d+))?\s+(?:of\s+the\s+)?(?:[\w-]+\s+){{0,2}}?(?P<unit>"
                             rf"appointments?|sessions?|participants?|patients?|people|subjects?|"
                             rf"cases?|treatments?|visits?|controls?)\b", sentence, re.I):
            value = parse_number(re.sub(r"^a\s+", "", m.group("n"), flags=re.I))
            if value is None or m.start() < hit.start() - 200:
                continue
            s0, s1 = a + m.start(), a + m.end()
            named = [idx for s, e, idx in mentions if s0 <= s < s1]
            arm = arms[named[0]].label if named else ""
            unit = m.group("unit").lower()
            unit = unit if unit.endswith("s") or unit == "people" else unit + "s"
            if unit == "controls":
                unit = "participants"
            out.append(AdverseEvent(arm, kind, int(value), int(m.group("d")) if m.group("d")
                                    else None, unit, doc.ev(s0, s1)))
    return out


# ------------------------------------------------------------------ public API


def extract_from_text(text: str, *, source: str, protocol: Protocol,
                      arms: list[Arm] | None = None) -> Extraction:
    """Read one text (an abstract, a full-text body) into an :class:`Extraction`.

    Parameters
    ----------
    text : str
        The text as stored; spans index into it unchanged.
    source : str
        Its name in the outcomes table, e.g. ``"abstract"`` or ``"pmc:body"``.
    protocol : Protocol
        Supplies instrument aliases and scales, and the dry needling terms.
    arms : list of Arm, optional
        Arms already known (from the abstract) when reading a full-text body.

    Examples
    --------
    >>> from reviewpipe.protocol import load_protocol
    >>> p = load_protocol("queries/dry-needling-pf.toml")
    >>> e = extract_from_text("Eighty-four adults were randomised.", source="abstract",
    ...                       protocol=p)
    >>> e.n_randomised
    84
    """
    doc = build_doc(text or "", source, protocol)
    n_total, n_ev = total_n(doc)
    if arms:
        arms = [replace(arm) for arm in arms]
        arm_aliases(doc, arms)
    else:
        arms = find_arms(doc)
    if n_total is None and arms and all(a.n for a in arms):
        n_total = sum(a.n or 0 for a in arms)
    instruments = []
    for start, end, name in doc.mentions:
        if name not in {i.name for i in instruments}:
            instruments.append(InstrumentMention(name, doc.outcome_of[name],
                                                 _instrument_scale(doc, name), doc.ev(start, end)))
    schedule = sorted({t.weeks for t in doc.times if t.weeks is not None and not t.duration
                       and not t.reference})
    return Extraction(source=source, n_randomised=n_total, n_evidence=n_ev, arms=arms,
                      instruments=instruments, timepoints=schedule,
                      values=_values(doc, arms, n_total, n_ev),
                      adverse_events=_adverse_events(doc, arms), abbreviations=doc.abbrevs)

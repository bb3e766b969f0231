"""Sample size and arms: how many were randomised, to which arms, and each arm's
role, read from one document."""

from __future__ import annotations

import re

from reviewpipe.extract_doc import (
    ALLOC,
    NOT_A_GROUP,
    PEOPLE,
    SHAM_CUE,
    Arm,
    Doc,
    Evidence,
    word_tokens,
)
from reviewpipe.numbers import (
    NUMBER,
    WORD_NUMBER,
    parse_number,
    split_clauses,
    stem_word,
    word_pattern,
)
from reviewpipe.protocol import Protocol


def total_n(doc: Doc) -> tuple[int | None, Evidence | None]:
    """The number randomised: the best-scored "<N> <people>" or "<N> were randomised"."""
    pattern = re.compile(rf"\b(?P<n>{NUMBER})\s+(?:(?:eligible|consecutive|adult|female|male|"
                         rf"office|unique)\s+)?(?:{PEOPLE}|(?=were\s+(?:randomi|enrolled|"
                         rf"included|allocated|assigned|recruited)))|\b{PEOPLE}\s*\(\s*n\s*=\s*"
                         rf"(?P<n2>\d+)\s*\)", re.I)
    best: tuple[float, int, int, int] | None = None
    for match in pattern.finditer(doc.text):
        raw = match.group("n") or match.group("n2")
        value = parse_number(raw)
        if value is None or value < 4 or value != int(value):
            continue
        start = match.start("n") if match.group("n") else match.start("n2")
        end = start + len(raw)
        a, b = doc.sentence_at(start)
        sentence = doc.text[a:b]
        after = doc.text[end:min(b, end + 90)]
        score = 2.0 if (ALLOC.search(sentence) or re.search(
            r"\b(?:enrolled|included|recruited|took\s+part|randomi)", sentence, re.I)) else 0.0
        stop = re.search(r"\b(?:screened|assessed\s+for|completed|analy[sz]ed|lost|dropped|"
                         r"excluded|withdrew|finished)\b", after, re.I)
        alloc = ALLOC.search(after) or re.search(r"\b(?:enrolled|took\s+part)", after, re.I)
        if stop and (not alloc or stop.start() < alloc.start()):
            score -= 3
        if doc.text[:start].count("(") > doc.text[:start].count(")"):
            score -= 2
        if re.match(r"\s*(?:women|men)\b", doc.text[end:end + 8], re.I):
            score -= 1
        key = (score, -start, int(value), end)
        if score >= 1 and (best is None or key[:2] > best[:2]):
            best = (score, -start, int(value), end)
    if best is None:
        return None, None
    return best[2], doc.ev(-best[1], best[3])


def _clean_item(text: str) -> str:
    text = re.sub(r"^\s*(?:,|;|:|\b(?:and|or|to|into|either|receiving|with)\b|\s)+", "", text,
                  flags=re.I)
    text = re.sub(r"^(?:who|which)\s+(?:received|were\s+given|underwent)\s+", "", text.strip(),
                  flags=re.I)
    text = re.sub(r"^(?:the|a|an)\s+", "", text.strip(), flags=re.I)
    text = re.sub(r"^(?:the\s+)?(?:first|second|third|other)\b(?:\s+(?:group|arm))?\s*(?:was\s+)?"
                  r"(?:treated\s+with|received|with)?\s*", "", text, flags=re.I)
    text = re.sub(r"^(?:group\s+\w+|(?:the\s+)?[\w-]+\s+group)\s+(?:received|receives|"
                  r"was\s+treated\s+with|underwent)\s+", "", text, flags=re.I)
    text = re.sub(r"\s+(?:once|twice|three\s+times|\w+\s+times\s+a\s+week|for\s+\S+\s+(?:weeks?|"
                  r"days?|months?)|over\s+\S+\s+weeks?)\b.*$", "", text, flags=re.I)
    text = re.sub(r"[\s,;:.]+(?:and|or)?$", "", text.strip(), flags=re.I)
    text = re.sub(r"\s+(?:groups?|arms?)$", "", text, flags=re.I) if len(text.split()) > 1 else text
    return text.strip(" ,;:")


def _split_list(text: str) -> list[str]:
    items = [p for p in re.split(r",?\s+or\s+(?:to\s+)?", text) if p.strip()]
    if len(items) >= 2:
        if re.search(r"\b(?:groups|arms)\s*$", items[-1]) or re.search(r"\bthree|four\b", text):
            split: list[str] = []
            for item in items:
                parts = [p for p in re.split(r",\s*", item) if p.strip()]
                split.extend(parts if all(len(p.split()) <= 2 for p in parts) else [item])
            items = split
        return items
    depth, parts, last = 0, [], 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == ",":
            parts.append(text[last:i])
            last = i + 1
    parts.append(text[last:])
    out: list[str] = []
    for part in parts:
        out.extend(re.split(r"\s+and\s+(?=(?:a|an|the|group)\b|\w+(?:-\w+)?\s+(?:group|arm)\b)",
                            part) if len(parts) == 1 else [part])
    if len(parts) > 1 and " and " in out[-1]:
        out[-1:] = re.split(r"\s+and\s+", out[-1], maxsplit=1)
    return [p for p in out if p.strip()]


def _distribute(items: list[str]) -> list[str]:
    """``real or sham trigger point dry needling`` → both arms get the shared head noun."""
    if len(items) >= 2 and len(items[-1].split()) > 1:
        tail = items[-1].split(maxsplit=1)[1]
        return [f"{item} {tail}" if len(item.split()) == 1 and item.islower() else item
                for item in items[:-1]] + [items[-1]]
    return items


INT_PATTERN = rf"(?:(?<![\w.±/+-])\d+(?![\w.])|\b{WORD_NUMBER}\b)"
_LABEL = (r"(?:\bgroup\s+(?:[A-Z]|\d)\b|\b(?:the\s+)?(?:first|second|other)\b(?:\s+(?:group|arm))?|"
          r"\bone\s+(?:arm|group)\b|\b(?:the|an?)\s+(?:[\w-]+\s+){1,2}(?:group|arm)\b)")
_GIVE = r"\s*(?:received|receives|was\s+treated\s+with|treated\s+with|underwent|performed)\s+"
_Candidate = tuple[str, int | None, Evidence, Evidence | None]


def _arm_candidates(doc: Doc) -> list[_Candidate]:
    """Arms as (description, n, evidence of the description, evidence of n).

    Sentence by sentence, the first that yields two or more arms by any rule wins; within a
    sentence the rules that also give n come first.
    """
    for a, b in doc.sentences:
        sentence = doc.text[a:b]
        if not (ALLOC.search(sentence) or re.search(r"\b(?:group|arm)s?\b", sentence, re.I)):
            continue
        for rule in (_by_n_marks, _by_n_in_group, _by_n_received, _by_labels, _by_list):
            found = rule(doc, a, sentence)
            if len(found) >= 2 and all(desc for desc, *_ in found):
                return found
    return []


def _by_n_marks(doc: Doc, a: int, sentence: str) -> list[_Candidate]:
    """``… to X (n = 58) or to Y (n = 53)``, ``Z (control group, n = 34)``."""
    marks = list(re.finditer(r"\(\s*(?:(?P<lab>[^()]{0,40}?),\s*)?n\s*=\s*(?P<n>\d+)\s*\)",
                             sentence))
    if len(marks) < 2 or re.search(r"\b(?:women|men|male|female)\b", marks[0].group(0), re.I):
        return []
    verb = ALLOC.search(sentence)
    prev = verb.end() if verb and verb.end() < marks[0].start() else 0
    out = []
    for m in marks:
        chunk = re.split(r"[;:]|,?\s+(?:or|and|versus|vs\.?)\s+(?:to\s+)?(?=(?:the|a|an)\s)|"
                         r",?\s+or\s+(?:to\s+)?|\b(?:in)?to\s+(?:either\s+)?",
                         sentence[prev:m.start()])[-1]
        desc = _clean_item(chunk)
        if m.group("lab"):
            desc = f"{desc} ({m.group('lab').strip()})" if desc else m.group("lab").strip()
        out.append((desc, int(m.group("n")), doc.ev(a + prev, a + m.end()),
                    doc.ev(a + m.start("n"), a + m.end("n"))))
        prev = m.end()
    return out


def _by_n_in_group(doc: Doc, a: int, sentence: str) -> list[_Candidate]:
    """``eight in the experimental group, who received X, and eight in the control group``."""
    found = re.finditer(
        rf"(?P<n>{INT_PATTERN})\s+(?:{PEOPLE}\s+)?(?:were\s+)?(?:in|into|to)\s+(?P<lab>(?:the|an?)\s+"
        rf"(?:[\w-]+\s+){{0,3}}?(?:group|arm))(?:,?\s*(?:who|which)\s+(?:received|were\s+treated"
        rf"\s+with|underwent|had)\s+(?P<desc>[^,;.]+))?", sentence, re.I)
    return [((f"{m.group('desc').strip()} ({_clean_item(m.group('lab'))} group)" if m.group("desc")
              else _clean_item(m.group("lab"))), int(parse_number(m.group("n")) or 0),
             doc.ev(a + m.start(), a + m.end()), doc.ev(a + m.start("n"), a + m.end("n")))
            for m in found]


def _by_n_received(doc: Doc, a: int, sentence: str) -> list[_Candidate]:
    """``29 received MSN release and 25 received a steroid injection``."""
    found = [m for m in re.finditer(rf"(?P<n>{INT_PATTERN})\s+(?:{PEOPLE}\s+)?(?:were\s+)?"
                                    rf"(?:treated\s+with|received|underwent|given|with)\s+",
                                    sentence, re.I)
             if not re.search(r"\b(?:group|arm)\s*$", sentence[:m.start()], re.I)]  # "group 1"
    out = []
    for i, m in enumerate(found):
        stop = found[i + 1].start() if i + 1 < len(found) else len(sentence)
        desc = _clean_item(re.split(r"[;.]", sentence[m.end():stop])[0])
        out.append((desc, int(parse_number(m.group("n")) or 0), doc.ev(a + m.start(), a + stop),
                    doc.ev(a + m.start("n"), a + m.end("n"))))
    return out


def _by_labels(doc: Doc, a: int, sentence: str) -> list[_Candidate]:
    """``group A received X; group B received Y``, ``one arm received X and the other Y``."""
    heads = [m for m in re.finditer(_LABEL + f"(?:{_GIVE})?", sentence, re.I)
             if re.search(_GIVE + "$", m.group(0), re.I) or re.match(
                 r"(?:the\s+)?(?:other|second)", m.group(0), re.I)]
    if not any(re.search(_GIVE + "$", h.group(0), re.I) for h in heads):
        return []
    out = []
    for i, m in enumerate(heads):
        stop = heads[i + 1].start() if i + 1 < len(heads) else len(sentence)
        chunk = re.split(r",\s*(?:each|both)\b|;", sentence[m.end():stop])[0]
        desc = _clean_item(re.sub(r"[\s,;]+(?:and|while|whereas)?\s*$", "", chunk))
        tag = re.match(r"group\s+\w+", m.group(0), re.I)
        out.append((f"{desc} ({tag.group(0)})" if tag and desc else desc, None,
                    doc.ev(a + m.start(), a + stop), None))
    return out


def _by_list(doc: Doc, a: int, sentence: str) -> list[_Candidate]:
    """``allocated to real or sham needling``, ``divided into an X group and a Y group``."""
    lead = re.search(r"\b(?:randomi[sz]ed|allocated|assigned|divided|distributed|enrolled|"
                     r"randomly\s+\w+)(?:\s+\w+ly)?(?:\s+(?:by|using|with)\s+(?:an?\s+|the\s+)?"
                     r"[\w\s:-]{0,40}?)?\s+(?:either\s+)?(?:in\s*to|between|to)\s+(?:either\s+)?(?:(?:two|three|"
                     r"four|2|3|4)\s+(?:groups|arms)(?:\s+of\s+\w+)?(?:\s+by\s+[\w\s-]+?)?\s*"
                     r"(?:[:,]\s*)?)?", sentence, re.I)
    if not lead:
        return []
    rest = sentence[lead.end():]
    cut = re.search(r";|\.\s*$|\.$|,\s*(?:delivered|each|with|who|and\s+were|using|by|receiving\s+"
                    r"(?!either))|\s+and\s+were\b|\s+\(\d+\s+per\b|\s+by\s+|\s+using\s+", rest)
    rest = rest[:cut.start()] if cut else rest
    items = [i for i in _distribute([_clean_item(i) for i in _split_list(rest)]) if i]
    ev = doc.ev(a + lead.end(), a + lead.end() + len(rest))
    return [(item, None, ev, None) for item in items]


def _cointerventions(doc: Doc) -> list[str]:
    out = []
    for m in re.finditer(r"\b(?:(?:all|both|each)(?:\s+(?:of\s+the\s+)?(?:two|three|four))?\s+"
                         r"(?:groups?|arms?)(?:\s+also)?\s+(?:received|performed|underwent|were\s+"
                         r"given)|each\s+combined\s+with|each\s+added\s+to|both\s+combined\s+with)"
                         r"\s+(?P<co>[^.;]+)", doc.text, re.I):
        co = re.split(r"\s+(?:\w+\s+(?:days?|times|sessions?)\s+(?:a|per)\s+week|once|twice|for|"
                      r"over|during|at|on|from)\b|\s*[,(]", m.group("co"))[0].strip()
        if co and len(co.split()) <= 6 and not re.match(rf"(?:\d+|{WORD_NUMBER})\b", co, re.I):
            out.append(re.sub(r"^(?:a|an|the)\s+", "", co, flags=re.I))
    return out


def dn_terms(protocol: Protocol) -> list[re.Pattern[str]]:
    terms = list(protocol.criteria["intervention"]["terms"]) + ["needling"]
    return [word_pattern(t) for t in terms]


def find_arms(doc: Doc) -> list[Arm]:
    """Arms with their roles; the dry needling arm first, then controls in order of mention."""
    candidates = _arm_candidates(doc)
    if len(candidates) < 2:
        return []
    co = _cointerventions(doc)
    dn_patterns = dn_terms(doc.protocol)
    arms: list[Arm] = []
    for desc, n, ev, n_ev in candidates:
        label = desc
        for abbr, expansion in doc.abbrevs.items():
            if re.search(rf"(?<![\w-]){re.escape(abbr)}(?![\w-])", label) and (
                    expansion.lower() not in label.lower()):
                label = re.sub(rf"(?<![\w-]){re.escape(abbr)}(?![\w-])",
                               f"{expansion} ({abbr})", label, count=1)
        for extra in co:
            if not word_tokens(extra) <= word_tokens(label):
                label = f"{label} + {extra}"
        dn = any(p.search(label) for p in dn_patterns) and not SHAM_CUE.search(label)
        arms.append(Arm(label=label, role="dn" if dn else "control", n=n or None,
                        n_evidence=n_ev if n else None, evidence=ev,
                        sentence=doc.ev(*doc.sentence_at(ev.start))))
    if not any(a.role == "dn" for a in arms) and any(p.search(doc.text) for p in dn_patterns):
        generic = [a for a in arms if re.search(r"\b(?:experimental|intervention|treatment|case|"
                                                r"study)\b", a.label, re.I)]
        if len(generic) == 1:
            generic[0].role = "dn"
            generic[0].label += " (dry needling)"
    _equal_n(doc, arms)
    arms.sort(key=lambda a: a.role != "dn")  # stable: controls keep their order of mention
    arm_aliases(doc, arms)
    return arms


def _equal_n(doc: Doc, arms: list[Arm]) -> None:
    if all(a.n for a in arms):
        return
    for m in re.finditer(rf"(?P<n>{INT_PATTERN})\s+(?:{PEOPLE}\s+)?(?:per|in\s+each|each)\s+"
                         rf"(?:arm|group)\b|\b(?:groups|arms)\s+of\s+(?P<n2>{INT_PATTERN})",
                         doc.text, re.I):
        a, b = next(c for c in split_clauses(doc.text, *doc.sentence_at(m.start()))
                    if c[0] <= m.start() <= c[1])
        if not re.search(r"\b(?:completed|analy[sz]ed|finished|followed\s+up)\b", doc.text[a:b]):
            break
    else:
        return
    key = "n" if m.group("n") else "n2"
    value = parse_number(m.group(key))
    if value:
        for arm in arms:
            if not arm.n:
                arm.n, arm.n_evidence = int(value), doc.ev(m.start(key), m.end(key))


def arm_aliases(doc: Doc, arms: list[Arm]) -> None:
    toks = [word_tokens(a.label) for a in arms]
    for i, arm in enumerate(arms):
        others = set().union(*(t for j, t in enumerate(toks) if j != i)) if len(arms) > 1 else set()
        own = set(toks[i] - others) - {stem_word(w) for w in doc.outcome_of} - {"vas", "pain"}
        for abbr, expansion in doc.abbrevs.items():
            if abbr in arm.label or (word_tokens(expansion) and word_tokens(expansion) <= toks[i]
                                     and not word_tokens(expansion) <= others):
                own.add(abbr.lower())
        for tag in re.findall(r"\bgroup\s+([A-Z0-9])\b", arm.label):
            own.add(f"group {tag.lower()}")
        for word, role in (("control", "control"), ("experimental", "dn"), ("case", "dn")):
            holders = [a for a in arms if re.search(rf"\b{word}", a.label, re.I)]
            if holders == [arm] or (not holders and arm.role == role and
                                    sum(a.role == role for a in arms) == 1):
                own.add(word)
        if arm.role == "dn" and sum(a.role == "dn" for a in arms) == 1 and not any(
                "needl" in t for t in others):
            own |= {"needl", "dn", "dry"}
        arm.aliases = frozenset(own)


def arm_mentions(text: str, start: int, end: int, arms: list[Arm]) -> list[tuple[int, int, int]]:
    """(start, end, arm index) of words naming an arm inside ``text[start:end]``."""
    out: list[tuple[int, int, int]] = []
    for m in re.finditer(r"\bgroup\s+[A-Z0-9]\b|[A-Za-z][A-Za-z0-9]*", text[start:end]):
        word = m.group(0)
        key = word.lower() if word.startswith(("group ", "Group ")) else stem_word(word)
        if word.isupper() and len(word) > 1:
            key = word.lower()
        hits = [i for i, a in enumerate(arms) if key in a.aliases or word.lower() in a.aliases]
        if not hits and len(arms) == 2 and re.match(r"\s*group\b", text[start + m.end():]) and (
                key not in NOT_A_GROUP):
            # "the steroid group" when the arm was described as methylprednisolone: in a
            # two-arm trial a group that is not the dry needling group is the other one
            hits = [i for i, a in enumerate(arms) if a.role == "control"]
        if len(hits) == 1:
            s, e = start + m.start(), start + m.end()
            if out and out[-1][2] == hits[0] and s - out[-1][1] <= 2:
                out[-1] = (out[-1][0], e, hits[0])
            else:
                out.append((s, e, hits[0]))
    return out

"""What the PICO tagger reads: EBM-NLP tokens, and the binary features of each token and its
window (words, suffixes, shapes, section headings, word lists, the numbers rules)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from reviewpipe.numbers import find_p_values, find_stats, find_times, split_sentences

Doc = Sequence[Sequence[str]]  # sentences of tokens


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PEOPLE = _wordset("""adults adult patients patient participants participant people persons subjects
subject individuals volunteers women woman men man children child infants infant neonates
newborns adolescents boys girls mothers pregnant elderly smokers students workers athletes
runners players cases outpatients inpatients veterans users survivors residents nurses
physicians smokers""")
_ALLOC = re.compile(r"^(?:randomi[sz]\w*|randomly|allocated|assigned|received|receiving|"
                    r"administered|given|versus|vs|placebo|sham|control)$")
_OUTCOME_WORDS = _wordset("""score scores scale rate rates incidence level levels mortality survival
pain quality outcome outcomes measured assessed index duration time risk function symptoms
events response concentration concentrations pressure""")
_ABBREVIATIONS = frozenset({"vs", "e.g", "i.e", "al", "approx", "etc", "fig", "resp"})
_SECTIONS = (
    ("bg", re.compile(r"^(?:background|introduction|importance|context|rationale)")),
    ("obj", re.compile(r"^(?:objectives?|aims?|purpose|goals?|hypothes)")),
    ("part", re.compile(r"^(?:patients|participants|subjects|population|setting|sample)")),
    ("int", re.compile(r"^(?:interventions?|treatments?)")),
    ("out", re.compile(r"^(?:main|outcomes?|measure|measurements|endpoints?)")),
    ("meth", re.compile(r"^(?:methods?|design|materials|methodology|study)")),
    ("res", re.compile(r"^(?:results?|findings)")),
    ("conc", re.compile(r"^(?:conclusions?|interpretation|relevance|discussion|implications)")),
)
_CUES = _wordset("""of on in among with to versus vs compared than between and or receiving received
plus for after by from at was were improved reduced increased measured assessed using who
underwent had""")
_STOP = _wordset("""a an the and or of to in on for with without by at from as that this was were is
are be been not no than after before during between among within into per vs versus we our
their its it both each all""")


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, token)`` as EBM-NLP tokenises: whitespace words, no commas, final ``.`` apart.

    Examples
    --------
    >>> [t for _, _, t in tokenize("Pain, function and mood were assessed.")]
    ['Pain', 'function', 'and', 'mood', 'were', 'assessed', '.']
    """
    out: list[tuple[int, int, str]] = []
    for match in re.finditer(r"[^\s,]+", text):
        start, end, word = match.start(), match.end(), match.group(0)
        # EBM-NLP drops an abbreviation's full stop ("vs", "e.g", "al").
        if word.endswith(".") and word[:-1].lower() in _ABBREVIATIONS:
            out.append((start, end - 1, word[:-1]))
        # A trailing full stop ends a sentence unless it closes a decimal or an initial.
        elif len(word) > 1 and word.endswith(".") and not re.search(r"(?:\d\.\d*|\b\w)\.$",
                                                                      word):
            out.append((start, end - 1, word[:-1]))
            out.append((end - 1, end, "."))
        else:
            out.append((start, end, word))
    return out


def sentence_tokens(text: str) -> list[list[tuple[int, int, str]]]:
    """Tokens of ``text`` grouped by sentence (`reviewpipe.numbers.split_sentences`)."""
    out = []
    for a, b in split_sentences(text):
        toks = [(a + s, a + e, w) for s, e, w in tokenize(text[a:b])]
        if toks:
            out.append(toks)
    return out


def _core(token: str) -> str:
    core = re.sub(r"^[^\w]+|[^\w%]+$", "", token).lower()
    return re.sub(r"\d+", "0", core)


def _shape(token: str) -> str:
    shape = re.sub(r"[A-Z]", "X", re.sub(r"[a-z]", "x", re.sub(r"\d", "d", token)))
    return re.sub(r"(.)\1+", r"\1\1", shape)[:8]


def _section(tokens: Sequence[str]) -> tuple[str | None, int]:
    """The section a heading at the start of a sentence opens, and how many tokens it spans."""
    n = 0
    while n < len(tokens) and n < 5 and re.fullmatch(r"[A-Z][A-Z/&-]{1,}:?", tokens[n]):
        n += 1
    if n == 0 or (n == 1 and not tokens[0].endswith(":") and len(tokens) > 1
                  and not tokens[1][:1].isupper()):
        return None, 0
    words = [t.strip(":").lower() for t in tokens[:n]]
    for name, pattern in _SECTIONS:
        if any(pattern.match(w) for w in words):
            return name, n
    return "other", n


def _rule_marks(tokens: Sequence[str]) -> list[set[str]]:
    """Per-token marks from `reviewpipe.numbers`: inside a p-value, a statistic or a time."""
    text, starts = "", []
    for tok in tokens:
        starts.append(len(text))
        text += tok + " "
    marks: list[set[str]] = [set() for _ in tokens]

    def mark(a: int, b: int, name: str) -> None:
        for k, s in enumerate(starts):
            if s < b and s + len(tokens[k]) > a:
                marks[k].add(name)

    for p in find_p_values(text):
        mark(p.start, p.end, "r:p")
    for stat in find_stats(text):
        mark(stat.start, stat.end, "r:stat")
    for t in find_times(text):
        mark(t.start, t.end, "r:dur" if t.duration else "r:time")
    return marks


def doc_features(doc: Doc) -> list[list[list[str]]]:
    """Binary feature names for every token of one document (sentences of tokens).

    The first sentence is read as the title, as in EBM-NLP documents.
    """
    cores = [[_core(t) for t in sent] for sent in doc]
    title = {w for w in cores[0] if w and w not in _STOP} if cores else set()
    section = "none"
    out = []
    for si, (sent, words) in enumerate(zip(doc, cores, strict=True)):
        heading, n_head = _section(sent)
        if heading:
            section = heading
        joined = " ".join(sent)
        sent_marks = {"s:p" if find_p_values(joined) else "s:nop"}
        if re.search(r"randomi[sz]|randomly|allocated|assigned", joined, re.I):
            sent_marks.add("s:alloc")
        if any(w in _PEOPLE for w in words):
            sent_marks.add("s:people")
        rules = _rule_marks(sent)
        padded = ["<s>", "<s>", "<s>", *words, "</s>", "</s>", "</s>"]
        where = "title" if si == 0 else f"sec={section}"
        depth = 0
        feats_sent = []
        prev_cue = _cue_before(words)
        next_cue = _cue_after(words)
        for i, (tok, w) in enumerate(zip(sent, words, strict=True)):
            j = i + 3
            f = [f"w={w}", f"s3={w[-3:]}", f"s4={w[-4:]}", f"p3={w[:3]}", f"sh={_shape(tok)}",
                 where, f"{where}|w={w}", f"w-1={padded[j - 1]}", f"w+1={padded[j + 1]}",
                 f"w-2={padded[j - 2]}", f"w+2={padded[j + 2]}", f"w-3={padded[j - 3]}",
                 f"w+3={padded[j + 3]}", f"b-={padded[j - 1]}|{w}", f"b+={w}|{padded[j + 1]}",
                 f"s3-1={padded[j - 1][-3:]}", f"s3+1={padded[j + 1][-3:]}"]
            f.extend(sent_marks)
            f += [f"pc={prev_cue[i]}", f"nc={next_cue[i]}", f"pn={prev_cue[i]}|{next_cue[i]}"]
            f.extend({f"ctx={c}" for c in padded[j - 6:j - 3] + padded[j + 4:j + 7]
                      if c not in _STOP})
            f.extend(rules[i])
            depth += tok.count("(") + tok.count("[")
            if depth > 0:
                f.append("paren")
            depth = max(0, depth - tok.count(")") - tok.count("]"))
            if i < n_head:
                f.append("heading")
            if not w:
                f.append("punct")
            if si > 0 and w in title:
                f.append("in_title")
            if w in _PEOPLE:
                f.append("people")
            if _ALLOC.match(w):
                f.append("alloc")
            if w in _OUTCOME_WORDS:
                f.append("outcome_word")
            if any(p in _PEOPLE for p in padded[j + 1:j + 4]) and re.fullmatch(r"[0\w-]+", w):
                f.append("before_people")
            if any(p in _PEOPLE for p in padded[max(0, j - 6):j]):
                f.append("after_people")
            feats_sent.append(f)
        out.append(feats_sent)
    return out


def _cue_before(words: Sequence[str]) -> list[str]:
    """For each token, the nearest cue word (preposition, verb of allocation…) to its left."""
    out, last = [], "<s>"
    for w in words:
        out.append(last)
        if w in _CUES:
            last = w
    return out


def _cue_after(words: Sequence[str]) -> list[str]:
    return _cue_before(words[::-1])[::-1]

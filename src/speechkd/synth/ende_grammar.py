"""A synchronous English->German grammar: aligned sentence pairs with German gender/case agreement,
adjective declension, verb-second main clauses (fronted adverbials, objects, subordinate clauses),
verb-final subordinate clauses, separable verbs, perfect with haben/sein, modals, negation (nicht/kein),
questions and number words. Stands in for the text of CoVoST2 ("read": short read sentences) and MuST-C
("talk": longer first-person spoken sentences with subordination and coordination).

English->German is a function (one translation per English sentence), so an NMT expert can learn it
well while a small speech student, which must also recognise the audio, visibly falls short.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from .ende_clause import Clause
from .ende_morphology import NounPhrase
from .ende_phrases import STYLES, PhraseMaker, pick

STYLE_NAMES = ("talk", "read")

# English connective, German for present-like tenses, German for past, English tenses it may govern
_CONJUNCTIONS = {"because": ("weil", "weil", None), "although": ("obwohl", "obwohl", None),
                 "when": ("wenn", "als", {"pres", "past"}), "if": ("wenn", "wenn", {"pres", "modal"}),
                 "while": ("während", "während", {"pres", "past"}), "before": ("bevor", "bevor", {"pres", "past"})}
_V2_OPENERS = (("Actually", "eigentlich"), ("Of course", "natürlich"), ("Unfortunately", "leider"),
               ("Luckily", "zum Glück"), ("Honestly", "ehrlich gesagt"), ("Later", "später"))
_PLAIN_OPENERS = {"": ("", ""), "So": ("So,", "Also,"), "And": ("And", "Und"), "But": ("But", "Aber"),
                  "Well": ("Well,", "Na ja,")}


@dataclass(frozen=True)
class Pair:
    en: str
    de: str


def _finish(en: str, de: str, question: bool = False) -> Pair:
    mark = "?" if question else "."
    en, de = " ".join(en.split()), " ".join(de.split())
    return Pair(en[0].upper() + en[1:] + mark, de[0].upper() + de[1:] + mark)


class _Sentences:
    def __init__(self, rng: random.Random, style: str):
        self.rng, self.style = rng, style
        self.make = PhraseMaker(rng, STYLES[style])
        self.contract = style == "talk"

    def en(self, cl: Clause, **kw) -> str:
        text = cl.en_clause(contract=self.contract, **kw)
        return text.replace("I am ", "I'm ") if self.contract else text

    # ------------------------------------------------------------------------------- main clauses

    def main(self, cl: Clause, front: str = "auto") -> tuple[str, str]:
        """A declarative main clause, fronting subject, time, a locative or (English cleft) the object."""
        rng = self.rng
        if front == "auto":
            options = {"subj": 10}
            if cl.time and not cl.time.mid:
                options["time"] = 5
            if any(a.slot == "loc" for a in cl.adjuncts):
                options["loc"] = 2
            if cl.acc is not None and cl.acc.noun and cl.acc.det == "def" and not cl.neg and \
                    cl.tense in ("pres", "past"):
                options["acc"] = 1
            front = pick(rng, options)
        if front == "time":
            return f"{cl.time.en} {self.en(cl, omit=frozenset({'time'}))}", \
                cl.de_main(cl.time.de, frozenset({"time"}))
        if front == "loc":
            loc = next(a for a in cl.adjuncts if a.slot == "loc")
            return f"{loc.en}, {self.en(cl, omit=frozenset({'loc'}))}", cl.de_main(loc.de, frozenset({"loc"}))
        if front == "acc":  # English cleft -> German object topicalisation: "Den Hund sah der Mann."
            be = "was" if cl.tense == "past" else "is"
            return f"it {be} {cl.acc.en('obj')} that {self.en(cl, omit=frozenset({'acc'}))}", \
                cl.de_main(cl.acc.de("acc"), frozenset({"acc"}))
        return self.en(cl), cl.de_main(cl.subj.de("nom"), frozenset({"subj"}))

    def question(self, cl: Clause) -> tuple[str, str]:
        cl.neg = False
        options = {"yn": 8, "why": 1}
        if cl.subj.noun is not None or cl.subj.name:
            options["who"] = 2
        if cl.acc is not None:
            options["what"] = 2
        if cl.dat is not None:
            options["whom"] = 1
        for slot in ("loc", "dir"):
            if any(a.slot == slot for a in cl.adjuncts):
                options[slot] = 2
        if cl.time and not cl.time.mid:
            options["when"] = 2
        kind = pick(self.rng, options)
        if kind == "yn":
            return self.en(cl, question=True), cl.de_main(None)
        if kind == "who":
            agree = dataclasses.replace(cl, subj=NounPhrase(pron="he"))  # "wer" takes a 3sg verb
            return self.en(cl, subject="who"), agree.de_main("wer", frozenset({"subj"}))
        if kind == "what":
            person = cl.acc.kind == "person"
            return f"{'who' if person else 'what'} {self.en(cl, question=True, omit=frozenset({'acc'}))}", \
                cl.de_main("wen" if person else "was", frozenset({"acc"}))
        if kind == "whom":
            to = " to" if cl.acc is not None else ""
            return f"who {self.en(cl, question=True, omit=frozenset({'dat'}))}{to}", \
                cl.de_main("wem", frozenset({"dat"}))
        wh = {"loc": ("where", "wo"), "dir": ("where", "wohin"), "when": ("when", "wann"), "why": ("why", "warum")}
        en_wh, de_wh = wh[kind]
        omit = frozenset({"time" if kind == "when" else kind})
        return f"{en_wh} {self.en(cl, question=True, omit=omit)}", cl.de_main(de_wh, omit)

    def subordinate(self, conj: str, adjunct_rate: float | None = None, subj: NounPhrase | None = None,
                    tenses: set[str] | None = None) -> tuple[str, str, Clause]:
        de_present, de_past, allowed = _CONJUNCTIONS[conj] if conj != "that" else ("dass", "dass", None)
        allowed = allowed if tenses is None else (tenses if allowed is None else allowed & tenses)
        cl = self.make.clause(tenses=allowed, adjunct_rate=adjunct_rate, subj=subj)
        de_conj = de_past if cl.tense in ("past", "modal_past") else de_present
        return f"{conj} {self.en(cl)}", cl.de_sub(de_conj), cl

    # ------------------------------------------------------------------------------ read sentences

    def read(self) -> Pair:
        kind = pick(self.rng, {"main": 45, "question": 18, "copula": 15, "sub": 14, "report": 8})
        make = self.make
        if kind == "question":
            return _finish(*self.question(make.clause()), question=True)
        if kind == "copula":
            return _finish(*self.main(make.clause(frames=("cop",))))
        if kind == "sub":
            en, de = self.main(make.clause(adjunct_rate=0.1))
            conj = self.rng.choice(sorted(_CONJUNCTIONS))
            sub_en, sub_de, _ = self.subordinate(conj, adjunct_rate=0.0)
            return _finish(f"{en} {sub_en}", f"{de}, {sub_de}")
        if kind == "report":
            matrix = make.clause(frames=("that",), tenses={"pres", "past", "perf"}, allow_neg=False)
            matrix.time = None
            sub_en, sub_de, _ = self.subordinate("that", adjunct_rate=0.1)
            return _finish(f"{self.en(matrix)} {sub_en}", f"{self.main(matrix, 'subj')[1]}, {sub_de}")
        return _finish(*self.main(make.clause(adjunct_rate=0.2)))

    # ------------------------------------------------------------------------------ talk sentences

    def talk(self) -> Pair:
        rng, make = self.rng, self.make
        kind = pick(rng, {"matrix": 30, "fronted_sub": 22, "because": 20, "coord": 16, "adverb": 12})
        opener_en, opener_de = _PLAIN_OPENERS[pick(rng, {"": 5, "So": 3, "And": 2, "But": 1, "Well": 1})]
        if kind == "matrix":  # "I think that ..." / "Actually, we have learned that ..."
            me = NounPhrase(pron=pick(rng, {"I": 6, "we": 4}))
            matrix = make.clause(frames=("that",), tenses={"pres", "past", "perf"}, subj=me, allow_neg=False)
            matrix.time = None
            if rng.random() < 0.3:
                adv_en, adv_de = rng.choice(_V2_OPENERS)
                en, de = f"{adv_en}, {self.en(matrix)}", matrix.de_main(adv_de)
                opener_en = opener_de = ""
            else:
                en, de = self.main(matrix, "subj")
            sub_en, sub_de, _ = self.subordinate("that")
            if rng.random() < 0.3:  # spoken English drops the complementiser, German never does
                sub_en = sub_en.removeprefix("that ")
            en, de = f"{en} {sub_en}", f"{de}, {sub_de}"
            if rng.random() < 0.35:
                conj = rng.choice(["because", "although", "when", "if"])
                more_en, more_de, _ = self.subordinate(conj, adjunct_rate=0.2)
                en, de = f"{en} {more_en}", f"{de}, {more_de}"
        elif kind == "fronted_sub":  # "So, when we ..., we ..." -> "Also, wenn wir ..., <verb> wir ..."
            conj = rng.choice(["when", "when", "if", "before", "while", "although", "because"])
            sub_en, sub_de, sub = self.subordinate(conj)
            tenses = {"past", "modal_past"} if sub.tense == "past" and conj in ("when", "while", "before") \
                else {"pres", "fut", "modal"} if conj in ("when", "if") else None
            same = sub.subj.is_pronoun and rng.random() < 0.5
            main = make.clause(tenses=tenses, subj=sub.subj if same else None)
            en, de = f"{sub_en}, {self.en(main)}", main.de_main(sub_de + ",")
        elif kind == "because":
            en, de = self.main(make.clause())
            conj = rng.choice(["because", "because", "although", "when", "if", "while"])
            sub_en, sub_de, _ = self.subordinate(conj)
            en, de = f"{en} {sub_en}", f"{de}, {sub_de}"
        elif kind == "coord":
            first = make.clause(adjunct_rate=0.3)
            en, de = self.main(first)
            same = first.subj.is_pronoun and rng.random() < 0.6  # a repeated noun subject would sound odd
            second = make.clause(subj=first.subj if same else None, adjunct_rate=0.3)
            link = pick(rng, {"and then": 4, "but": 3, "and": 3})
            if link == "and then":
                second.time = None
                en, de = f"{en}, and then {self.en(second)}", f"{de}, und {second.de_main('dann', frozenset())}"
            else:
                en2, de2 = self.main(second, "subj")
                en, de = f"{en}, {link} {en2}", f"{de}, {'aber' if link == 'but' else 'und'} {de2}"
        else:  # a sentence adverb fills the German Vorfeld: "Leider haben wir ..."
            cl = make.clause()
            adv_en, adv_de = rng.choice(_V2_OPENERS)
            en, de = f"{adv_en}, {self.en(cl)}", cl.de_main(adv_de)
            opener_en = opener_de = ""
        if opener_en:
            en, de = f"{opener_en} {en}", f"{opener_de} {de}"
        return _finish(en, de)


def generate_pairs(n: int, seed: int, style: str) -> list[Pair]:
    """`n` aligned sentence pairs, deterministic in (seed, style): a longer list extends a shorter one.
    No English and no German sentence repeats (talk's optional "that" maps two English sentences to one
    German one), so splits cut from the list are disjoint on both sides."""
    if style not in STYLE_NAMES:
        raise ValueError(f"style must be one of {', '.join(STYLE_NAMES)}, got {style!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(f"ende-{style}-{seed}")
    gen = _Sentences(rng, style)
    produce = gen.talk if style == "talk" else gen.read
    seen_en: set[str] = set()
    seen_de: set[str] = set()
    out: list[Pair] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise ValueError(f"the grammar produced only {len(out)} distinct {style} sentences, asked for {n}")
        pair = produce()
        if pair.en not in seen_en and pair.de not in seen_de:
            seen_en.add(pair.en)
            seen_de.add(pair.de)
            out.append(pair)
    return out

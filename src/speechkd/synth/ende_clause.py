"""One abstract clause, realised in English and in German.

German topology: [Vorfeld] finite [Mittelfeld] [right bracket] in main clauses (verb second), finite first
in yes/no questions, and conj [Mittelfeld] [verb cluster] in subordinate clauses (verb final, separable
particle re-attached: "..., weil sie ihren Bruder anruft"). Mittelfeld order: subject, pronoun objects,
time, definite objects, negation (nicht/nie), indefinite objects (kein replaces nicht), predicate,
companion PPs, locative PPs, directional PPs. English: subject, auxiliary chain (do-support for negation
and questions), objects, directional, locative, companion, time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .ende_lexicon import TimeAdverb, Verb
from .ende_morphology import PRETERITE_STEMS, NounPhrase, de_present, de_preterite

TENSES = ("pres", "prog", "past", "perf", "fut", "modal", "modal_past")
MODALS = {"can": "können", "must": "müssen", "want": "wollen", "should": "sollen"}
_EN_NEG = {"do": "don't", "does": "doesn't", "did": "didn't", "is": "isn't", "are": "aren't", "was": "wasn't",
           "were": "weren't", "has": "hasn't", "have": "haven't", "will": "won't", "can": "can't",
           "could": "couldn't", "should": "shouldn't"}


@dataclass(frozen=True)
class Adjunct:
    en: str
    de: str
    slot: str  # comp | loc | dir


@dataclass
class Clause:
    subj: NounPhrase
    verb: Verb | None            # None: the copula be/sein with `pred`
    tense: str = "pres"
    modal: str = ""              # a MODALS key when tense is modal/modal_past
    acc: NounPhrase | None = None
    dat: NounPhrase | None = None
    pred: tuple[str, str] | None = None  # copula predicate (English, German)
    adjuncts: list[Adjunct] = field(default_factory=list)
    time: TimeAdverb | None = None
    neg: bool = False

    # ------------------------------------------------------------------------------------- German

    def de_verb(self) -> tuple[str, str, list[str]]:
        """(finite form, separated particle, non-finite forms in right-bracket order)."""
        p, verb, tense = self.subj.person, self.verb, self.tense
        if tense in ("modal", "modal_past"):
            lemma = MODALS[self.modal]
            # "should" is Konjunktiv II of sollen, which has the preterite's forms (du solltest)
            past = tense == "modal_past" or self.modal == "should"
            finite = de_preterite(PRETERITE_STEMS[lemma], p) if past else de_present(lemma, "", p)
            return finite, "", [verb.de_inf if verb else "sein"]
        if tense == "fut":
            return de_present("werden", "", p), "", [verb.de_inf if verb else "sein"]
        if tense == "perf":
            aux = verb.aux if verb else "sein"
            return de_present(aux, "", p), "", [verb.de_pp if verb else "gewesen"]
        if verb is None:
            return (de_preterite("war", p) if tense == "past" else de_present("sein", "", p)), "", []
        base = verb.de_inf[len(verb.particle):]
        finite = de_preterite(verb.de_past, p) if tense == "past" else de_present(base, verb.de_er, p)
        return finite, verb.particle, []

    def _kein_target(self) -> NounPhrase | None:
        if not self.neg:
            return None
        for np in (self.acc, self.dat):
            if np is not None and np.negatable:
                return np
        return None

    def de_middle(self, omit: frozenset[str] = frozenset()) -> list[str]:
        """Mittelfeld constituents; `omit` names the ones moved to the Vorfeld or questioned."""
        kein = self._kein_target()
        objects = [(np, case) for np, case in ((self.acc, "acc"), (self.dat, "dat")) if np is not None
                   and case not in omit]
        out = [] if "subj" in omit else [self.subj.de("nom")]
        out += [np.de(case) for np, case in objects if np.is_pronoun]  # pronouns: accusative first
        never = self.time is not None and self.time.de == "nie"
        if self.time and not never and "time" not in omit:
            out.append(self.time.de)
        full = [(np, case) for np, case in reversed(objects) if not np.is_pronoun]  # nouns: dative first
        out += [np.de(case) for np, case in full if np.definite]
        if (self.neg and kein is None) or never:
            out.append("nie" if never else "nicht")
        out += [np.de(case, negated=np is kein) for np, case in full if not np.definite]
        if self.pred:
            out.append(self.pred[1])
        for slot in ("comp", "loc", "dir"):
            out += [a.de for a in self.adjuncts if a.slot == slot and slot not in omit]
        return out

    def de_main(self, vorfeld: str | None, omit: frozenset[str] = frozenset()) -> str:
        """Verb-second main clause with `vorfeld` first (None: verb-first, as in yes/no questions)."""
        finite, particle, nonfinite = self.de_verb()
        words = ([vorfeld] if vorfeld else []) + [finite] + self.de_middle(omit)
        words += ([particle] if particle else []) + nonfinite
        return " ".join(words)

    def de_sub(self, conj: str) -> str:
        """Verb-final subordinate clause: conj ... [non-finite] finite, particle joined to the finite."""
        finite, particle, nonfinite = self.de_verb()
        return " ".join([conj] + self.de_middle() + nonfinite + [particle + finite])

    # ------------------------------------------------------------------------------------ English

    def en_chain(self, need_aux: bool, person: int | None = None) -> list[str]:
        """The English verb chain; its first word is the finite. need_aux: use do-support if needed."""
        p = self.subj.person if person is None else person
        s3 = p == 2
        be = "am" if p == 0 else "is" if s3 else "are"
        have, do = ("has", "does") if s3 else ("have", "do")
        verb, tense = self.verb, self.tense
        base, v3, past, pp, ing = verb.en if verb else ("be", be, "was" if p in (0, 2) else "were", "been", "")
        if tense in ("modal", "modal_past"):
            if self.modal in ("must", "want"):
                word = "have to" if self.modal == "must" else "want to"
                if need_aux:
                    head = [do if tense == "modal" else "did", word]
                elif tense == "modal":
                    head = [("has to" if s3 else "have to") if self.modal == "must"
                            else ("wants to" if s3 else "want to")]
                else:
                    head = ["had to" if self.modal == "must" else "wanted to"]
            else:
                head = [{"can": "can", "should": "should"}[self.modal] if tense == "modal" else "could"]
            return head + [base]
        if tense == "fut":
            return ["will", base]
        if tense == "perf":
            return [have, pp]
        if tense == "prog":
            return [be, ing]
        if verb is None:
            return [v3 if tense == "pres" else past]
        if tense == "past":
            return ["did", base] if need_aux else [past]
        return [do, base] if need_aux else [v3 if s3 else base]

    def en_rest(self, omit: frozenset[str] = frozenset()) -> list[str]:
        """Everything after the verb chain: tail, objects, predicate, adjuncts, clause-final time."""
        verb = self.verb
        out: list[str] = []
        tail = verb.en_tail if verb else ""
        acc = self.acc if "acc" not in omit else None
        late_tail = bool(tail and verb.tail_movable and acc is not None and acc.is_pronoun)
        if tail and not late_tail:
            out.append(tail)
        if self.dat is not None and "dat" not in omit:
            out.append(self.dat.en("obj"))
        if acc is not None:
            out.append(acc.en("obj"))
        if late_tail:
            out.append(tail)
        if self.pred:
            out.append(self.pred[0])
        for slot in ("dir", "loc", "comp"):
            out += [a.en for a in self.adjuncts if a.slot == slot and slot not in omit]
        if self.time and not self.time.mid and "time" not in omit:
            out.append(self.time.en)
        return out

    def en_clause(self, question: bool = False, omit: frozenset[str] = frozenset(), contract: bool = False,
                  subject: str | None = None) -> str:
        """English clause. question: aux before the subject. subject: replaces the subject ("who")."""
        chain = self.en_chain(need_aux=question or self.neg, person=2 if subject else None)
        mid = [self.time.en] if self.time and self.time.mid and "time" not in omit else []
        first, rest = chain[0], chain[1:]
        if self.neg:
            if contract and first in _EN_NEG:
                first = _EN_NEG[first]
            else:
                first = "cannot" if first == "can" else f"{first} not"
        if self.verb is None or rest:  # adverb after the first auxiliary/copula: "has already seen"
            rest = mid + rest
        else:
            first = " ".join(mid + [first])
        subj = subject or self.subj.en("subj")
        head = [first, subj] if question else [subj, first]
        return " ".join(head + rest + self.en_rest(omit))

"""Random constituents for the English-German grammar: noun phrases, adjuncts and whole clauses, drawn
under selectional restrictions (who can eat what) and tense/adverb compatibility ("yesterday" + past).
Every choice goes through one `random.Random`, over sorted candidates, so output depends on the seed only.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from .ende_clause import TENSES, Adjunct, Clause
from .ende_lexicon import (ADJECTIVES, CITIES, NAMES, NOUNS, PLACE_PREPS, PRONOUNS, TIME_ADVERBS,
                           VERBS_BY_FRAME, TimeAdverb)
from .ende_morphology import NounPhrase, de_number, de_pp, en_number

_SPATIAL = (("on", "auf"), ("under", "unter"), ("next to", "neben"), ("behind", "hinter"),
            ("in front of", "vor"))
_COMPANION = (("with", "mit", "dat"), ("for", "für", "acc"), ("without", "ohne", "acc"))
_TENSE_WEIGHTS = {"read": {"pres": 22, "prog": 6, "past": 26, "perf": 18, "fut": 10, "modal": 12, "modal_past": 6},
                  "talk": {"pres": 30, "prog": 5, "past": 20, "perf": 18, "fut": 8, "modal": 14, "modal_past": 5}}
_SUBJECT_PRONOUNS = {"read": {"he": 3, "she": 3, "they": 2, "I": 2, "we": 1, "you": 1},
                     "talk": {"I": 35, "we": 30, "you": 10, "he": 8, "she": 8, "they": 9}}


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = sorted(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


@dataclass
class Style:
    name: str
    pronoun_subject: float   # chance a person subject is a pronoun
    adjective: float
    adjunct: float           # chance of a locative / companion adjunct
    time: float
    neg: float


STYLES = {"read": Style("read", 0.3, 0.3, 0.25, 0.4, 0.18),
          "talk": Style("talk", 0.6, 0.25, 0.4, 0.35, 0.2)}


def _negatable(np: NounPhrase | None) -> NounPhrase | None:
    """Numerals and quantifiers read badly under negation ("nicht einige"): make them definite."""
    if np is None or np.det not in ("num", "many", "some"):
        return np
    return NounPhrase(noun=np.noun, det="def", adj=np.adj, plural=True)


class PhraseMaker:
    def __init__(self, rng: random.Random, style: Style):
        self.rng, self.style = rng, style

    # ------------------------------------------------------------------------------- noun phrases

    def noun_phrase(self, kinds, role: str = "obj", avoid: NounPhrase | None = None,
                    pronoun: bool = True) -> NounPhrase:
        rng = self.rng
        kind = rng.choice(sorted(kinds))
        if kind == "weather":
            return NounPhrase(pron="it")
        if kind == "person" and pronoun:
            r = rng.random()
            if r < (self.style.pronoun_subject if role == "subj" else 0.15):
                if role == "subj":
                    return NounPhrase(pron=pick(rng, _SUBJECT_PRONOUNS[self.style.name]))
                keys = [k for k in sorted(PRONOUNS) if k != "it" and
                        (avoid is None or not avoid.is_pronoun or PRONOUNS[k][2] != avoid.person)]
                return NounPhrase(pron=rng.choice(keys))
            if r > 0.85:
                name = rng.choice([n for n in NAMES if avoid is None or n != avoid.name])
                return NounPhrase(name=name)
        noun = rng.choice(NOUNS[kind])
        det = pick(rng, {"def": 40, "indef": 20, "poss": 20, "num": 6, "bare": 6, "many": 4, "some": 4})
        if noun.mass and (det in ("num", "many", "some") or (det == "indef" and rng.random() < 0.6)):
            det = "bare"  # "coffee", rarely "a coffee"
        plural = det in ("num", "many", "some") or (det == "bare" and not noun.mass) or (
            det in ("def", "poss") and not noun.mass and rng.random() < 0.25)
        adjectives = [a for a in ADJECTIVES if kind in a.kinds]
        adj = rng.choice(adjectives) if adjectives and rng.random() < self.style.adjective else None
        count = rng.choice(range(2, 13)) if rng.random() < 0.8 else rng.randint(13, 99)
        np = NounPhrase(noun=noun, det=det, adj=adj, plural=plural, count=count if det == "num" else 0,
                        poss=rng.choice(sorted(k for k in PRONOUNS if k != "it")) if det == "poss" else "")
        if avoid is not None and avoid.noun is noun:
            return self.noun_phrase(kinds, role, avoid, pronoun)
        return np

    def _place_np(self) -> NounPhrase:
        det = pick(self.rng, {"def": 60, "poss": 20, "indef": 20})
        adjectives = [a for a in ADJECTIVES if "place" in a.kinds]
        adj = self.rng.choice(adjectives) if self.rng.random() < 0.2 else None
        poss = self.rng.choice(sorted(k for k in PRONOUNS if k != "it")) if det == "poss" else ""
        return NounPhrase(noun=self.rng.choice(NOUNS["place"]), det=det, adj=adj, poss=poss)

    # ------------------------------------------------------------------------------------ adjuncts

    def locative(self) -> Adjunct:
        r = self.rng.random()
        if r < 0.12:
            en, de = self.rng.choice(CITIES)
            return Adjunct(f"in {en}", f"in {de}", "loc")
        if r < 0.2:
            return Adjunct("at home", "zu Hause", "loc")
        np = self._place_np()
        loc_en, loc_de, _, _ = PLACE_PREPS[np.noun.de]
        return Adjunct(f"{loc_en} {np.en('obj')}", de_pp(loc_de, np, "dat"), "loc")

    def directional(self) -> Adjunct:
        r = self.rng.random()
        if r < 0.15:
            en, de = self.rng.choice(CITIES)
            return Adjunct(f"to {en}", f"nach {de}", "dir")
        if r < 0.25:
            return Adjunct("home", "nach Hause", "dir")
        np = self._place_np()
        _, _, dir_en, dir_de = PLACE_PREPS[np.noun.de]
        return Adjunct(f"{dir_en} {np.en('obj')}", de_pp(dir_de, np, "dat" if dir_de == "zu" else "acc"), "dir")

    def spatial(self, avoid: NounPhrase) -> Adjunct:
        en, de = self.rng.choice(_SPATIAL)
        np = self.noun_phrase({"object", "openable", "vehicle", "place"}, avoid=avoid)
        np = NounPhrase(noun=np.noun, det="def" if np.det not in ("def", "poss") else np.det, adj=np.adj,
                        poss=np.poss)
        return Adjunct(f"{en} {np.en('obj')}", f"{de} {np.de('dat')}", "loc")

    def companion(self, subj: NounPhrase) -> Adjunct:
        en, de, case = self.rng.choice(_COMPANION)
        np = self.noun_phrase({"person"}, avoid=subj)
        return Adjunct(f"{en} {np.en('obj')}", de_pp(de, np, case), "comp")

    # -------------------------------------------------------------------------------------- clauses

    def tense(self, allowed: set[str] | None = None) -> str:
        weights = {t: w for t, w in _TENSE_WEIGHTS[self.style.name].items() if allowed is None or t in allowed}
        return pick(self.rng, weights)

    def time_for(self, tense: str, rate: float | None = None) -> TimeAdverb | None:
        rate = self.style.time if rate is None else rate
        options = [t for t in TIME_ADVERBS if tense in t.tenses]
        if not options or self.rng.random() >= rate:
            return None
        return self.rng.choice(options)

    def clause(self, frames: tuple[str, ...] = ("acc", "acc", "acc", "dat", "dat_acc", "intr", "dir", "cop"),
               tenses: set[str] | None = None, adjunct_rate: float | None = None,
               subj: NounPhrase | None = None, allow_neg: bool = True) -> Clause:
        rng, style = self.rng, self.style
        adjunct_rate = style.adjunct if adjunct_rate is None else adjunct_rate
        frame = rng.choice(frames)
        if frame == "cop":
            return self._copula(tenses, subj, allow_neg)
        verb = rng.choice(VERBS_BY_FRAME[frame])
        if subj is None or subj.kind not in verb.subj:
            subj = self.noun_phrase(verb.subj, role="subj")
        allowed = set(tenses) if tenses else set(TENSES)
        tense = self.tense(allowed)
        cl = Clause(subj, verb, tense)
        if tense in ("modal", "modal_past"):
            modals = ["can", "must", "want", "should"] if tense == "modal" else ["can", "must", "want"]
            if "weather" in verb.subj:  # it can rain, it should snow; not "it wants to rain"
                modals = ["can", "should"] if tense == "modal" else ["can"]
            cl.modal = rng.choice(modals)
        if frame in ("acc", "dat_acc"):
            cl.acc = self.noun_phrase(verb.obj, avoid=subj)
        if frame == "dat":
            cl.dat = self.noun_phrase(verb.obj, avoid=subj)
        if frame == "dat_acc":
            cl.dat = self.noun_phrase({"person"}, avoid=subj)
        if frame == "dir" and rng.random() < 0.9:
            cl.adjuncts.append(self.directional())
        if frame not in ("that",) and rng.random() < adjunct_rate:
            cl.adjuncts.append(self.locative())
        if frame in ("acc", "dat_acc", "intr", "dir") and subj.pron != "it" and rng.random() < adjunct_rate / 3:
            cl.adjuncts.append(self.companion(subj))
        cl.time = self.time_for(tense)
        cl.neg = allow_neg and (cl.time is None or cl.time.de != "nie") and rng.random() < style.neg
        if cl.neg:
            if cl.time is not None and cl.time.mid:  # not "did not sometimes swim"
                cl.time = None
            cl.acc, cl.dat = _negatable(cl.acc), _negatable(cl.dat)
        return cl

    def _copula(self, tenses: set[str] | None, subj: NounPhrase | None, allow_neg: bool) -> Clause:
        rng = self.rng
        kind = pick(rng, {"adj": 50, "loc": 35, "age": 15})
        usual = {"pres", "past"} if kind == "age" else {"pres", "past", "fut", "modal"}
        tense = self.tense((set(tenses) & usual if tenses else usual) or {"pres"})
        neg_ok = allow_neg
        if kind == "adj":
            adj = rng.choice(ADJECTIVES)
            kinds = set(adj.kinds) - {"weather"} if rng.random() > 0.15 or "weather" not in adj.kinds else {"weather"}
            subj = self.noun_phrase(kinds or adj.kinds, role="subj")
            pred = (adj.en, adj.de)
        elif kind == "loc":
            subj = subj if subj is not None and subj.pron != "it" else self.noun_phrase(
                {"person", "animal", "object", "readable", "device", "vehicle"}, role="subj")
            where = self.locative() if rng.random() < 0.5 else self.spatial(subj)
            pred = (where.en, where.de)
        else:
            subj = subj if subj is not None and subj.pron != "it" else self.noun_phrase({"person"}, role="subj")
            age = rng.randint(2, 95)
            pred, neg_ok = (f"{en_number(age)} years old", f"{de_number(age)} Jahre alt"), False
        cl = Clause(subj, None, tense, pred=pred)
        if tense == "modal":
            cl.modal = rng.choice(["can", "must", "should"])
        cl.time = self.time_for(tense, rate=self.style.time / 2)
        cl.neg = neg_ok and (cl.time is None or cl.time.de != "nie") and rng.random() < self.style.neg
        if cl.neg and cl.time is not None and cl.time.mid:
            cl.time = None
        return cl

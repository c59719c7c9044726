"""The English-German synchronous grammar: determinism, and hand-checked German on built clauses."""
from __future__ import annotations

import re

import pytest

from speechkd.synth.ende_clause import Adjunct, Clause
from speechkd.synth.ende_grammar import Pair, generate_pairs
from speechkd.synth.ende_lexicon import ADJECTIVES, NOUNS, TIME_ADVERBS, VERBS
from speechkd.synth.ende_morphology import NounPhrase, de_number, de_pp, de_present, en_number



def find_noun(en):
    return next(n for nouns in NOUNS.values() for n in nouns if n.en == en)


def find_adjective(en):
    return next(a for a in ADJECTIVES if a.en == en)


def find_verb(de_inf):
    return next(v for v in VERBS if v.de_inf == de_inf)


def find_time(en):
    return next(t for t in TIME_ADVERBS if t.en == en)

def np(en: str, det: str = "def", adj: str | None = None, plural: bool = False, poss: str = "",
       count: int = 0) -> NounPhrase:
    return NounPhrase(noun=find_noun(en), det="poss" if poss else det, adj=find_adjective(adj) if adj else None,
                      plural=plural, poss=poss, count=count)


def sentence(text: str, end: str = ".") -> str:
    return text[0].upper() + text[1:] + end


# ------------------------------------------------------------------------------------- generation

@pytest.mark.parametrize("style", ["read", "talk"])
def test_generate_pairs_is_deterministic_and_seeded(style):
    a = generate_pairs(200, seed=5, style=style)
    assert a == generate_pairs(200, seed=5, style=style)
    assert a != generate_pairs(200, seed=6, style=style)
    assert len(a) == 200 and len({p.en for p in a}) == 200
    assert all(isinstance(p, Pair) for p in a)
    assert generate_pairs(50, seed=5, style=style) == a[:50]  # a prefix does not depend on n


@pytest.mark.parametrize("style", ["read", "talk"])
def test_text_is_clean_raw_sentences(style):
    for p in generate_pairs(1500, seed=1, style=style):
        for text in (p.en, p.de):
            assert "\t" not in text and "\n" not in text and "  " not in text and " ," not in text
            assert text[0].isupper() and text[-1] in ".?" and text == text.strip()
        assert re.search(r"\bi\b", p.en) is None  # English "I" is always capitalised
        assert p.en[-1] == p.de[-1]


def test_talk_is_longer_than_read_and_spoken():
    read = generate_pairs(1000, seed=2, style="read")
    talk = generate_pairs(1000, seed=2, style="talk")
    mean = lambda ps: sum(len(p.en.split()) for p in ps) / len(ps)  # noqa: E731
    assert mean(talk) > mean(read) + 3
    assert sum(p.en.startswith(("I ", "So, ", "We ")) for p in talk) > 150
    assert sum(", dass " in p.de for p in talk) > 100
    assert sum(p.en.endswith("?") for p in read) > 100  # questions


def test_bad_style_is_rejected():
    with pytest.raises(ValueError, match="style"):
        generate_pairs(3, seed=1, style="news")


def test_german_nouns_are_capitalised():
    nouns = {n.de for n in (find_noun(x) for x in ("dog", "window", "station", "coffee"))}
    pairs = generate_pairs(3000, seed=3, style="read")
    for noun in nouns:
        assert any(re.search(rf"\b{noun}\b", p.de) for p in pairs)
        assert not any(re.search(rf"\b{noun.lower()}\b", p.de) for p in pairs)


# ---------------------------------------------------------------------------------- morphology

def test_case_gender_and_adjective_declension():
    man, dog = np("man", adj="old"), np("dog", det="indef", adj="big")
    assert [man.de(c) for c in ("nom", "acc", "dat")] == ["der alte Mann", "den alten Mann", "dem alten Mann"]
    assert [dog.de(c) for c in ("nom", "acc", "dat")] == ["ein großer Hund", "einen großen Hund",
                                                         "einem großen Hund"]
    assert np("house", det="indef", adj="expensive").de("nom") == "ein teures Haus"
    assert np("coffee", det="bare", adj="cold").de("dat") == "kaltem Kaffee"
    assert np("child", plural=True, poss="I").de("dat") == "meinen Kindern"       # dative plural -n
    assert np("boy").de("acc") == "den Jungen" and np("boy").de("nom") == "der Junge"  # weak masculine
    assert np("dog", det="num", count=21, plural=True, adj="young").de("nom") == "einundzwanzig junge Hunde"
    assert np("dog", det="num", count=21, plural=True).en() == "twenty-one dogs"
    assert np("umbrella", det="indef").en() == "an umbrella"


def test_prepositions_govern_case_and_contract():
    assert de_pp("mit", np("woman", poss="she", adj="young"), "dat") == "mit ihrer jungen Frau"
    assert de_pp("für", np("brother", poss="I"), "acc") == "für meinen Bruder"
    assert de_pp("in", np("park"), "dat") == "im Park"        # location: dative
    assert de_pp("in", np("park"), "acc") == "in den Park"    # direction: accusative
    assert de_pp("zu", np("station"), "dat") == "zum Bahnhof"
    assert de_pp("zu", np("school"), "dat") == "zur Schule"
    assert de_pp("in", np("city", det="indef"), "acc") == "in eine Stadt"


def test_numbers_and_conjugation():
    assert [de_number(n) for n in (1, 16, 21, 30, 99, 101, 345)] == [
        "eins", "sechzehn", "einundzwanzig", "dreißig", "neunundneunzig", "einhunderteins",
        "dreihundertfünfundvierzig"]
    assert [en_number(n) for n in (13, 40, 99, 345)] == ["thirteen", "forty", "ninety-nine",
                                                         "three hundred and forty-five"]
    assert [de_present("sehen", "sieht", p) for p in range(6)] == ["sehe", "siehst", "sieht", "sehen", "seht",
                                                                   "sehen"]
    assert de_present("arbeiten", "arbeitet", 1) == "arbeitest"


# -------------------------------------------------------------------------------------- syntax

def both(cl: Clause, front: str = "subj") -> tuple[str, str]:
    if front == "time":
        return (sentence(f"{cl.time.en} {cl.en_clause(omit=frozenset({'time'}))}"),
                sentence(cl.de_main(cl.time.de, frozenset({"time"}))))
    return sentence(cl.en_clause()), sentence(cl.de_main(cl.subj.de("nom"), frozenset({"subj"})))


def test_verb_second_with_fronted_adverbial():
    cl = Clause(np("man", adj="old"), find_verb("sehen"), "past", acc=np("dog"), time=find_time("yesterday"))
    assert both(cl, "time") == ("Yesterday the old man saw the dog.", "Gestern sah der alte Mann den Hund.")
    assert both(cl) == ("The old man saw the dog yesterday.", "Der alte Mann sah gestern den Hund.")
    assert sentence(cl.de_main(cl.acc.de("acc"), frozenset({"acc"}))) == "Den Hund sah der alte Mann gestern."


def test_separable_verb_split_in_main_and_joined_in_subordinate_clause():
    cl = Clause(NounPhrase(pron="she"), find_verb("anrufen"), "pres", acc=np("brother", poss="she"))
    assert both(cl) == ("She calls her brother.", "Sie ruft ihren Bruder an.")
    assert cl.de_sub("weil") == "weil sie ihren Bruder anruft"
    cl.tense = "perf"
    assert cl.de_main("sie", frozenset({"subj"})) == "sie hat ihren Bruder angerufen"
    assert cl.de_sub("dass") == "dass sie ihren Bruder angerufen hat"
    cl.tense, cl.modal = "modal", "want"
    assert both(cl) == ("She wants to call her brother.", "Sie will ihren Bruder anrufen.")
    assert cl.de_sub("obwohl") == "obwohl sie ihren Bruder anrufen will"


def test_perfect_with_haben_and_sein_participle_last():
    go = Clause(np("child", plural=True), find_verb("gehen"), "perf",
                adjuncts=[Adjunct("to the station", "zum Bahnhof", "dir")])
    assert both(go) == ("The children have gone to the station.", "Die Kinder sind zum Bahnhof gegangen.")
    buy = Clause(NounPhrase(pron="I"), find_verb("kaufen"), "perf", acc=np("book", det="indef"),
                 time=find_time("already"))
    assert both(buy) == ("I have already bought a book.", "Ich habe schon ein Buch gekauft.")


def test_negation_nicht_versus_kein():
    cl = Clause(NounPhrase(pron="he"), find_verb("sehen"), "pres", acc=np("dog"), neg=True)
    assert both(cl) == ("He does not see the dog.", "Er sieht den Hund nicht.")
    cl.acc = np("dog", det="indef")
    assert both(cl) == ("He does not see a dog.", "Er sieht keinen Hund.")
    cl.acc, cl.tense = np("coffee", det="bare"), "past"
    assert both(cl) == ("He did not see coffee.", "Er sah keinen Kaffee.")
    sep = Clause(NounPhrase(pron="we"), find_verb("aufmachen"), "pres", acc=np("window"), neg=True)
    assert sep.de_main("wir", frozenset({"subj"})) == "wir machen das Fenster nicht auf"
    assert sep.en_clause(contract=True) == "we don't open the window"


def test_questions_are_verb_first_or_wh_second():
    cl = Clause(NounPhrase(pron="you"), find_verb("anrufen"), "modal", modal="can", acc=np("doctor"))
    assert sentence(cl.en_clause(question=True), "?") == "Can you call the doctor?"
    assert sentence(cl.de_main(None), "?") == "Kannst du den Arzt anrufen?"
    help_ = Clause(np("woman"), find_verb("helfen"), "past", dat=np("child"))
    assert sentence(help_.de_main("wem", frozenset({"dat"})), "?") == "Wem half die Frau?"
    assert sentence("who " + help_.en_clause(question=True, omit=frozenset({"dat"})), "?") == \
        "Who did the woman help?"


def test_dative_verbs_ditransitives_and_middle_field_order():
    give = Clause(NounPhrase(pron="she"), find_verb("geben"), "past", acc=np("book", det="indef"),
                  dat=np("boy", adj="young"), time=find_time("today"))
    assert both(give) == ("She gave the young boy a book today.", "Sie gab heute dem jungen Jungen ein Buch.")
    give.dat = NounPhrase(pron="he")
    assert give.de_sub("weil") == "weil sie ihm heute ein Buch gab"


def test_copula_predicate_adjective_is_uninflected():
    cl = Clause(np("house", adj="old"), None, "pres", pred=("expensive", "teuer"))
    assert both(cl) == ("The old house is expensive.", "Das alte Haus ist teuer.")
    cl.neg, cl.tense = True, "past"
    assert both(cl) == ("The old house was not expensive.", "Das alte Haus war nicht teuer.")


def test_output_does_not_depend_on_python_hash_seed():
    """Sets of strings iterate in a per-process order; the grammar must never draw from one unsorted."""
    import os
    import subprocess
    import sys
    code = ("from speechkd.synth.ende_grammar import generate_pairs as g; "
            "print(repr(g(300, 4, 'read') + g(300, 4, 'talk')))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout for h in (1, 2)}
    assert len(outs) == 1


def test_english_inflection_shared_by_both_grammars():
    from speechkd.synth.english_inflection import present_participle, regular_past, third_singular
    assert [third_singular(v) for v in ("watch", "carry", "play", "go", "see")] == \
        ["watches", "carries", "plays", "goes", "sees"]
    assert [regular_past(v) for v in ("dance", "carry", "stop", "play", "walk")] == \
        ["danced", "carried", "stopped", "played", "walked"]
    assert [present_participle(v) for v in ("dance", "see", "run", "be", "dye")] == \
        ["dancing", "seeing", "running", "being", "dyeing"]

"""Inflection for the English-German grammar: noun phrases in both languages (German case, gender, number,
strong/weak/mixed adjective declension, weak masculines, dative plural -n, kein), German verb conjugation
(present with stem change, preterite, modals), preposition-article contractions and number words.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ende_lexicon import PRONOUNS, Adjective, Noun

CASES = ("nom", "acc", "dat")

# index: m, f, n, plural
_DEF_ARTICLE = {"nom": ("der", "die", "das", "die"), "acc": ("den", "die", "das", "die"),
                "dat": ("dem", "der", "dem", "den")}
_EIN_ENDING = {"nom": ("", "e", "", "e"), "acc": ("en", "e", "", "e"), "dat": ("em", "er", "em", "en")}
_ADJ_WEAK = {"nom": ("e", "e", "e", "en"), "acc": ("en", "e", "e", "en"), "dat": ("en", "en", "en", "en")}
_ADJ_MIXED = {"nom": ("er", "e", "es", "en"), "acc": ("en", "e", "es", "en"), "dat": ("en", "en", "en", "en")}
_ADJ_STRONG = {"nom": ("er", "e", "es", "e"), "acc": ("en", "e", "es", "e"), "dat": ("em", "er", "em", "en")}
_SLOT = {"m": 0, "f": 1, "n": 2}

# determiners whose German form is fixed apart from case: English word, German nom/acc, German dat
_QUANTIFIERS = {"many": ("many", "viele", "vielen"), "some": ("some", "einige", "einigen")}


@dataclass(frozen=True)
class NounPhrase:
    """A noun phrase of either language: a pronoun, a name, or determiner + adjective + noun.

    det: def | indef | poss | num | bare | many | some. `poss` is a PRONOUNS key (the possessor).
    """
    noun: Noun | None = None
    det: str = "def"
    adj: Adjective | None = None
    plural: bool = False
    poss: str = ""
    count: int = 0
    pron: str = ""
    name: str = ""

    @property
    def person(self) -> int:
        """0..5 = ich, du, er/sie/es, wir, ihr, sie (plural nouns are 5)."""
        if self.pron:
            return PRONOUNS[self.pron][2]
        return 5 if self.plural else 2

    @property
    def is_pronoun(self) -> bool:
        return bool(self.pron)

    @property
    def definite(self) -> bool:
        """Definite NPs precede `nicht` in the German middle field; indefinite ones follow it."""
        return bool(self.pron or self.name) or self.det in ("def", "poss")

    @property
    def negatable(self) -> bool:
        """Negated with German `kein` rather than `nicht`: "a dog" / "apples" / "coffee"."""
        return self.noun is not None and self.det in ("indef", "bare")

    @property
    def kind(self) -> str:
        if self.pron == "it":
            return "weather"
        return self.noun.kind if self.noun else "person"

    def en(self, role: str = "subj") -> str:
        if self.pron:
            return PRONOUNS[self.pron][0 if role == "subj" else 1]
        if self.name:
            return self.name
        noun = self.noun.en_pl if self.plural else self.noun.en
        words = [self.adj.en, noun] if self.adj else [noun]
        if self.det == "def":
            det = "the"
        elif self.det == "indef":
            det = "an" if words[0][0] in "aeiou" else "a"
        elif self.det == "poss":
            det = PRONOUNS[self.poss][6]
        elif self.det == "num":
            det = en_number(self.count)
        elif self.det in _QUANTIFIERS:
            det = _QUANTIFIERS[self.det][0]
        else:
            det = ""
        return " ".join([det] + words if det else words)

    def de(self, case: str, negated: bool = False) -> str:
        """German form in `case`; negated=True turns ein/no article into kein (only if `negatable`)."""
        if self.pron:
            return PRONOUNS[self.pron][3 + CASES.index(case)]
        if self.name:
            return self.name
        slot = 3 if self.plural else _SLOT[self.noun.gender]
        det, table = "", _ADJ_STRONG
        if negated and self.negatable:
            det, table = "kein" + _EIN_ENDING[case][slot], _ADJ_MIXED
        elif self.det == "def":
            det, table = _DEF_ARTICLE[case][slot], _ADJ_WEAK
        elif self.det == "indef":
            det, table = "ein" + _EIN_ENDING[case][slot], _ADJ_MIXED
        elif self.det == "poss":
            det, table = PRONOUNS[self.poss][7] + _EIN_ENDING[case][slot], _ADJ_MIXED
        elif self.det == "num":
            det = de_number(self.count)
        elif self.det in _QUANTIFIERS:
            det = _QUANTIFIERS[self.det][2 if case == "dat" else 1]
        words = [det] if det else []
        if self.adj:
            words.append(self.adj.stem + table[case][slot])
        words.append(self._noun_de(case))
        return " ".join(words)

    def _noun_de(self, case: str) -> str:
        noun = self.noun
        if self.plural:
            form = noun.de_pl
            if case == "dat" and not form.endswith(("n", "s")):
                form += "n"  # dative plural: den Kindern
            return form
        if noun.weak and case != "nom":
            return noun.de + noun.weak  # n-declension: den Jungen, dem Nachbarn
        return noun.de


# ------------------------------------------------------------------------------------ prepositions

_CONTRACTIONS = {("in", "dem"): "im", ("in", "das"): "ins", ("an", "dem"): "am", ("an", "das"): "ans",
                 ("zu", "dem"): "zum", ("zu", "der"): "zur", ("von", "dem"): "vom", ("bei", "dem"): "beim"}


def de_pp(prep: str, np: NounPhrase, case: str) -> str:
    """German preposition + NP in `case`, contracting the definite article (zu dem -> zum)."""
    phrase = np.de(case)
    article, _, rest = phrase.partition(" ")
    short = _CONTRACTIONS.get((prep, article))
    if short and np.det == "def" and not np.plural and np.noun is not None:
        return f"{short} {rest}"
    return f"{prep} {phrase}"


# ------------------------------------------------------------------------------------- German verbs

_PRESENT_IRREGULAR = {
    "sein": ("bin", "bist", "ist", "sind", "seid", "sind"),
    "haben": ("habe", "hast", "hat", "haben", "habt", "haben"),
    "werden": ("werde", "wirst", "wird", "werden", "werdet", "werden"),
    "wissen": ("weiß", "weißt", "weiß", "wissen", "wisst", "wissen"),
    "können": ("kann", "kannst", "kann", "können", "könnt", "können"),
    "müssen": ("muss", "musst", "muss", "müssen", "müsst", "müssen"),
    "wollen": ("will", "willst", "will", "wollen", "wollt", "wollen"),
    "sollen": ("soll", "sollst", "soll", "sollen", "sollt", "sollen"),
}
PRETERITE_STEMS = {"sein": "war", "haben": "hatte", "können": "konnte", "müssen": "musste",
                   "wollen": "wollte", "sollen": "sollte"}


def de_present(inf: str, er_form: str, person: int) -> str:
    """Present tense of a (particle-less) verb; `er_form` carries any stem change (sieht, fährt)."""
    if inf in _PRESENT_IRREGULAR:
        return _PRESENT_IRREGULAR[inf][person]
    stem = inf[:-2] if inf.endswith("en") else inf[:-1]
    if person == 0:
        return stem + "e"
    if person == 1:
        base = er_form[:-1]
        return er_form if base.endswith(("s", "ß", "z", "x")) else base + "st"
    if person == 2:
        return er_form
    if person == 4:
        return stem + ("et" if stem.endswith(("t", "d")) else "t")
    return inf


def de_preterite(stem: str, person: int) -> str:
    """Preterite from the 1/3sg form: weak 'kaufte' -> kauftest..., strong 'sah' -> sahst, sahen..."""
    if stem.endswith("e"):
        return stem + ("", "st", "", "n", "t", "n")[person]
    du = "est" if stem.endswith(("s", "ß", "z", "t", "d")) else "st"
    ihr = "et" if stem.endswith(("t", "d")) else "t"
    return stem + ("", du, "", "en", ihr, "en")[person]


# ---------------------------------------------------------------------------------------- numbers

_EN_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
             "fifteen sixteen seventeen eighteen nineteen").split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_DE_UNITS = ("null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn "
             "fünfzehn sechzehn siebzehn achtzehn neunzehn").split()
_DE_TENS = "_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split()


def en_number(n: int) -> str:
    """English number words for 0..999: 'twenty-one', 'three hundred and five'."""
    if not 0 <= n <= 999:
        raise ValueError(f"number {n} out of range 0..999")
    if n >= 100:
        head = f"{_EN_UNITS[n // 100]} hundred"
        return head if n % 100 == 0 else f"{head} and {en_number(n % 100)}"
    if n < 20:
        return _EN_UNITS[n]
    tens, unit = divmod(n, 10)
    return _EN_TENS[tens] + (f"-{_EN_UNITS[unit]}" if unit else "")


def de_number(n: int) -> str:
    """German number words for 0..999, written as one word: 'einundzwanzig', 'dreihundertfünf'."""
    if not 0 <= n <= 999:
        raise ValueError(f"number {n} out of range 0..999")
    if n >= 100:
        head = ("ein" if n // 100 == 1 else _DE_UNITS[n // 100]) + "hundert"
        return head if n % 100 == 0 else head + de_number(n % 100)
    if n < 20:
        return _DE_UNITS[n]
    tens, unit = divmod(n, 10)
    if not unit:
        return _DE_TENS[tens]
    return ("ein" if unit == 1 else _DE_UNITS[unit]) + "und" + _DE_TENS[tens]

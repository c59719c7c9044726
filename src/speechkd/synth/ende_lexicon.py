"""The English-German lexicon of the synchronous grammar (ende_grammar.py): nouns with gender and plural,
adjectives, verbs with their argument frames and both languages' principal parts, pronouns, time adverbs.

Entries are compact strings parsed once at import, so the tables read like a dictionary. A few hundred
lemmas: the grammar's point is structure (case, agreement, word order), not vocabulary size.
"""
from __future__ import annotations

from dataclasses import dataclass

from .english_inflection import present_participle, regular_past, third_singular

# ---------------------------------------------------------------------------------------------- nouns


@dataclass(frozen=True)
class Noun:
    en: str
    en_pl: str
    de: str
    de_pl: str
    gender: str          # "m" | "f" | "n"
    kind: str            # selectional class: person, animal, food, drink, readable, object, device, ...
    weak: str = ""       # n-declension suffix ("n"/"en") of weak masculines: der Junge, den Jungen
    mass: bool = False   # may stand without article in the singular: "coffee" / "Kaffee"


# en | en plural | de | de plural | gender | flags (w=weak n, W=weak en, M=mass)
_NOUNS = {
    "person": """
        man|men|Mann|Männer|m  woman|women|Frau|Frauen|f  child|children|Kind|Kinder|n
        boy|boys|Junge|Jungen|m|w  girl|girls|Mädchen|Mädchen|n  teacher|teachers|Lehrer|Lehrer|m
        doctor|doctors|Arzt|Ärzte|m  student|students|Student|Studenten|m|W
        neighbour|neighbours|Nachbar|Nachbarn|m|w  friend|friends|Freund|Freunde|m
        brother|brothers|Bruder|Brüder|m  sister|sisters|Schwester|Schwestern|f
        mother|mothers|Mutter|Mütter|f  father|fathers|Vater|Väter|m  son|sons|Sohn|Söhne|m
        daughter|daughters|Tochter|Töchter|f  grandmother|grandmothers|Großmutter|Großmütter|f
        colleague|colleagues|Kollege|Kollegen|m|w  boss|bosses|Chef|Chefs|m
        waiter|waiters|Kellner|Kellner|m  customer|customers|Kunde|Kunden|m|w
        king|kings|König|Könige|m  queen|queens|Königin|Königinnen|f  farmer|farmers|Bauer|Bauern|m|w
        baby|babies|Baby|Babys|n  driver|drivers|Fahrer|Fahrer|m  nurse|nurses|Krankenschwester|Krankenschwestern|f""",
    "animal": """
        dog|dogs|Hund|Hunde|m  cat|cats|Katze|Katzen|f  horse|horses|Pferd|Pferde|n
        bird|birds|Vogel|Vögel|m  cow|cows|Kuh|Kühe|f  mouse|mice|Maus|Mäuse|f  fish|fish|Fisch|Fische|m""",
    "food": """
        apple|apples|Apfel|Äpfel|m  cake|cakes|Kuchen|Kuchen|m  bread|breads|Brot|Brote|n|M
        soup|soups|Suppe|Suppen|f|M  egg|eggs|Ei|Eier|n  banana|bananas|Banane|Bananen|f
        cheese|cheeses|Käse|Käse|m|M  sandwich|sandwiches|Sandwich|Sandwiches|n""",
    "drink": """
        coffee|coffees|Kaffee|Kaffees|m|M  tea|teas|Tee|Tees|m|M  water|waters|Wasser|Wasser|n|M
        milk|milks|Milch|Milche|f|M  beer|beers|Bier|Biere|n|M  juice|juices|Saft|Säfte|m|M""",
    "readable": """
        book|books|Buch|Bücher|n  letter|letters|Brief|Briefe|m  newspaper|newspapers|Zeitung|Zeitungen|f
        story|stories|Geschichte|Geschichten|f  map|maps|Karte|Karten|f  email|emails|E-Mail|E-Mails|f""",
    "object": """
        key|keys|Schlüssel|Schlüssel|m  bag|bags|Tasche|Taschen|f  ball|balls|Ball|Bälle|m
        cup|cups|Tasse|Tassen|f  chair|chairs|Stuhl|Stühle|m  table|tables|Tisch|Tische|m
        picture|pictures|Bild|Bilder|n  hat|hats|Hut|Hüte|m  umbrella|umbrellas|Regenschirm|Regenschirme|m
        ticket|tickets|Fahrkarte|Fahrkarten|f  present|presents|Geschenk|Geschenke|n
        flower|flowers|Blume|Blumen|f  ring|rings|Ring|Ringe|m  shoe|shoes|Schuh|Schuhe|m
        jacket|jackets|Jacke|Jacken|f  watch|watches|Uhr|Uhren|f""",
    "device": """
        light|lights|Licht|Lichter|n  radio|radios|Radio|Radios|n  computer|computers|Computer|Computer|m
        television|televisions|Fernseher|Fernseher|m  phone|phones|Telefon|Telefone|n
        lamp|lamps|Lampe|Lampen|f  heating|heatings|Heizung|Heizungen|f""",
    "openable": """
        window|windows|Fenster|Fenster|n  door|doors|Tür|Türen|f  box|boxes|Kiste|Kisten|f
        bottle|bottles|Flasche|Flaschen|f  gate|gates|Tor|Tore|n  shop|shops|Laden|Läden|m""",
    "vehicle": """
        car|cars|Auto|Autos|n  bike|bikes|Fahrrad|Fahrräder|n  bus|buses|Bus|Busse|m
        train|trains|Zug|Züge|m  boat|boats|Boot|Boote|n""",
    "place": """
        kitchen|kitchens|Küche|Küchen|f  room|rooms|Zimmer|Zimmer|n  garden|gardens|Garten|Gärten|m
        office|offices|Büro|Büros|n  park|parks|Park|Parks|m  city|cities|Stadt|Städte|f
        school|schools|Schule|Schulen|f  station|stations|Bahnhof|Bahnhöfe|m  market|markets|Markt|Märkte|m
        beach|beaches|Strand|Strände|m  cinema|cinemas|Kino|Kinos|n  restaurant|restaurants|Restaurant|Restaurants|n
        library|libraries|Bibliothek|Bibliotheken|f  supermarket|supermarkets|Supermarkt|Supermärkte|m
        hospital|hospitals|Krankenhaus|Krankenhäuser|n  church|churches|Kirche|Kirchen|f
        museum|museums|Museum|Museen|n  hotel|hotels|Hotel|Hotels|n  airport|airports|Flughafen|Flughäfen|m
        village|villages|Dorf|Dörfer|n  house|houses|Haus|Häuser|n  bank|banks|Bank|Banken|f""",
}

# place -> (English locative prep, German locative prep (+dative), English directional, German directional)
# German directional "zu" governs the dative, "in"/"auf"/"an" the accusative.
PLACE_PREPS: dict[str, tuple[str, str, str, str]] = {
    "Küche": ("in", "in", "into", "in"), "Zimmer": ("in", "in", "into", "in"), "Garten": ("in", "in", "into", "in"),
    "Büro": ("in", "in", "to", "in"), "Park": ("in", "in", "to", "in"), "Stadt": ("in", "in", "to", "in"),
    "Schule": ("at", "in", "to", "zu"), "Bahnhof": ("at", "an", "to", "zu"), "Markt": ("at", "auf", "to", "auf"),
    "Strand": ("on", "an", "to", "an"), "Kino": ("at", "in", "to", "in"), "Restaurant": ("in", "in", "to", "in"),
    "Bibliothek": ("in", "in", "to", "in"), "Supermarkt": ("in", "in", "to", "in"),
    "Krankenhaus": ("in", "in", "to", "in"), "Kirche": ("in", "in", "to", "in"), "Museum": ("in", "in", "to", "in"),
    "Hotel": ("in", "in", "to", "in"), "Flughafen": ("at", "an", "to", "zu"), "Dorf": ("in", "in", "to", "in"),
    "Haus": ("in", "in", "to", "zu"), "Bank": ("at", "in", "to", "zu"),
}


def _parse_nouns() -> dict[str, list[Noun]]:
    out: dict[str, list[Noun]] = {}
    for kind, block in _NOUNS.items():
        nouns = []
        for entry in block.split():
            en, en_pl, de, de_pl, gender, *flags = entry.split("|")
            flag = flags[0] if flags else ""
            weak = "n" if "w" in flag else "en" if "W" in flag else ""
            nouns.append(Noun(en, en_pl, de, de_pl, gender, kind, weak, "M" in flag))
        out[kind] = nouns
    return out


NOUNS: dict[str, list[Noun]] = _parse_nouns()

NAMES = ("Anna", "Maria", "Thomas", "Peter", "Lisa", "Paul", "Sarah", "Michael", "Julia", "David", "Laura",
         "Daniel")
CITIES = (("Berlin", "Berlin"), ("Hamburg", "Hamburg"), ("Munich", "München"), ("Vienna", "Wien"),
          ("Paris", "Paris"), ("London", "London"), ("Rome", "Rom"), ("Zurich", "Zürich"))

# ----------------------------------------------------------------------------------------- adjectives


@dataclass(frozen=True)
class Adjective:
    en: str
    de: str        # predicative form: "Das Haus ist teuer."
    stem: str      # attributive stem that takes the ending: "ein teures Haus"
    kinds: frozenset[str]


_PHYSICAL = "object device openable vehicle place readable"
# en | de predicative | attributive stem (if different) : kinds the adjective can describe
_ADJECTIVES = f"""
old|alt : person animal {_PHYSICAL}
new|neu : {_PHYSICAL}
big|groß : animal {_PHYSICAL}
small|klein : person animal food {_PHYSICAL}
young|jung : person animal
beautiful|schön : person animal {_PHYSICAL}
red|rot : object device openable vehicle
blue|blau : object device openable vehicle
green|grün : object openable vehicle
black|schwarz : animal object device vehicle
white|weiß : animal object openable vehicle
expensive|teuer|teur : object device vehicle food
cheap|billig : object device vehicle
good|gut : person animal food drink readable
friendly|freundlich : person animal
tired|müde|müd : person animal
happy|glücklich : person
hungry|hungrig : person animal
warm|warm : food drink weather
cold|kalt : food drink place weather
fresh|frisch : food drink
heavy|schwer : object openable
empty|leer : openable place
dark|dunkel|dunkl : place weather
clean|sauber : place object
dirty|schmutzig : place object vehicle
long|lang : readable
interesting|interessant : readable
"""


def _parse_adjectives() -> list[Adjective]:
    out = []
    for line in _ADJECTIVES.strip().splitlines():
        forms, kinds = line.split(" : ")
        en, de, *stem = forms.split("|")
        out.append(Adjective(en, de, stem[0] if stem else de, frozenset(kinds.split())))
    return out


ADJECTIVES: list[Adjective] = _parse_adjectives()

# ---------------------------------------------------------------------------------------------- verbs


@dataclass(frozen=True)
class Verb:
    en: tuple[str, str, str, str, str]  # base, 3sg, past, past participle, -ing of the English head verb
    en_tail: str      # words after the English head: "up" (movable particle), "for", "shopping"
    tail_movable: bool  # English particle goes after a pronoun object: "picks them up"
    de_inf: str       # full infinitive: "anrufen"
    de_er: str        # 3sg present of the base verb (without particle): "ruft"
    de_past: str      # 1/3sg preterite of the base verb: "rief"
    de_pp: str        # participle incl. particle: "angerufen"
    particle: str     # separable prefix: "an"
    aux: str          # perfect auxiliary: "haben" | "sein"
    frame: str        # intr | acc | dat | dat_acc | dir | that
    subj: frozenset[str]
    obj: frozenset[str]   # kinds of the accusative object (or the dative one for frame "dat")


def _en_forms(spec: str) -> tuple[str, str, str, str, str]:
    """'see/saw/seen' (irregular) or 'kick' (regular) -> base, 3sg, past, participle, -ing."""
    parts = spec.split("/")
    base = parts[0]
    past, pp = (parts[1], parts[2]) if len(parts) == 3 else (regular_past(base),) * 2
    return base, third_singular(base), past, pp, present_participle(base)


# English head(/past/pp)[ tail][ ~ if the particle moves] = German infinitive | er-form | preterite |
# participle | aux | frame | subject kinds : object kinds. A German infinitive "an|rufen" is separable.
_VERBS = """
see/saw/seen = sehen|sieht|sah|gesehen|h|acc|person : person animal object vehicle place device
buy/bought/bought = kaufen|kauft|kaufte|gekauft|h|acc|person : food drink readable object vehicle
read/read/read = lesen|liest|las|gelesen|h|acc|person : readable
eat/ate/eaten = essen|isst|aß|gegessen|h|acc|person animal : food
drink/drank/drunk = trinken|trinkt|trank|getrunken|h|acc|person animal : drink
visit = besuchen|besucht|besuchte|besucht|h|acc|person : person place
look for = suchen|sucht|suchte|gesucht|h|acc|person animal : person animal object readable
find/found/found = finden|findet|fand|gefunden|h|acc|person animal : person animal object readable
need = brauchen|braucht|brauchte|gebraucht|h|acc|person : object device vehicle food readable
meet/met/met = treffen|trifft|traf|getroffen|h|acc|person : person
ask = fragen|fragt|fragte|gefragt|h|acc|person : person
carry = tragen|trägt|trug|getragen|h|acc|person : object
take/took/taken = nehmen|nimmt|nahm|genommen|h|acc|person : object readable food
write/wrote/written = schreiben|schreibt|schrieb|geschrieben|h|acc|person : readable
sell/sold/sold = verkaufen|verkauft|verkaufte|verkauft|h|acc|person : object vehicle food readable
forget/forgot/forgotten = vergessen|vergisst|vergaß|vergessen|h|acc|person : object readable person
repair = reparieren|repariert|reparierte|repariert|h|acc|person : device vehicle object
love = lieben|liebt|liebte|geliebt|h|acc|person : person animal
call = an|rufen|ruft|rief|angerufen|h|acc|person : person
open = auf|machen|macht|machte|aufgemacht|h|acc|person : openable
close = zu|machen|macht|machte|zugemacht|h|acc|person : openable
pick up~ = ab|holen|holt|holte|abgeholt|h|acc|person : person object
invite = ein|laden|lädt|lud|eingeladen|h|acc|person : person
tidy up~ = auf|räumen|räumt|räumte|aufgeräumt|h|acc|person : place
switch off~ = aus|schalten|schaltet|schaltete|ausgeschaltet|h|acc|person : device
switch on~ = ein|schalten|schaltet|schaltete|eingeschaltet|h|acc|person : device
bring/brought/brought = mit|bringen|bringt|brachte|mitgebracht|h|acc|person : food drink object readable
help = helfen|hilft|half|geholfen|h|dat|person animal : person
thank = danken|dankt|dankte|gedankt|h|dat|person : person
follow = folgen|folgt|folgte|gefolgt|s|dat|person animal : person animal
answer = antworten|antwortet|antwortete|geantwortet|h|dat|person : person
give/gave/given = geben|gibt|gab|gegeben|h|dat_acc|person : object readable food drink
show/showed/shown = zeigen|zeigt|zeigte|gezeigt|h|dat_acc|person : object readable vehicle
send/sent/sent = schicken|schickt|schickte|geschickt|h|dat_acc|person : readable object
sleep/slept/slept = schlafen|schläft|schlief|geschlafen|h|intr|person animal :
work = arbeiten|arbeitet|arbeitete|gearbeitet|h|intr|person :
laugh = lachen|lacht|lachte|gelacht|h|intr|person :
wait = warten|wartet|wartete|gewartet|h|intr|person animal :
dance = tanzen|tanzt|tanzte|getanzt|h|intr|person :
sing/sang/sung = singen|singt|sang|gesungen|h|intr|person animal :
swim/swam/swum = schwimmen|schwimmt|schwamm|geschwommen|s|intr|person animal :
go/went/gone shopping = ein|kaufen|kauft|kaufte|eingekauft|h|intr|person :
arrive = an|kommen|kommt|kam|angekommen|s|intr|person :
get/got/got up = auf|stehen|steht|stand|aufgestanden|s|intr|person :
fall/fell/fallen asleep = ein|schlafen|schläft|schlief|eingeschlafen|s|intr|person animal :
go/went/gone = gehen|geht|ging|gegangen|s|dir|person animal :
drive/drove/driven = fahren|fährt|fuhr|gefahren|s|dir|person :
come/came/come = kommen|kommt|kam|gekommen|s|dir|person animal :
run/ran/run = laufen|läuft|lief|gelaufen|s|dir|person animal :
fly/flew/flown = fliegen|fliegt|flog|geflogen|s|dir|person :
think/thought/thought = glauben|glaubt|glaubte|geglaubt|h|that|person :
know/knew/known = wissen|weiß|wusste|gewusst|h|that|person :
hope = hoffen|hofft|hoffte|gehofft|h|that|person :
say/said/said = sagen|sagt|sagte|gesagt|h|that|person :
learn = lernen|lernt|lernte|gelernt|h|that|person :
notice = merken|merkt|merkte|gemerkt|h|that|person :
hear/heard/heard = hören|hört|hörte|gehört|h|that|person :
rain = regnen|regnet|regnete|geregnet|h|intr|weather :
snow = schneien|schneit|schneite|geschneit|h|intr|weather :
"""


def _parse_verbs() -> list[Verb]:
    out = []
    for line in _VERBS.strip().splitlines():
        en_spec, de_spec = line.split(" = ")
        movable = en_spec.endswith("~")
        head, _, tail = en_spec.rstrip("~").partition(" ")
        de_fields, kinds = de_spec.split(" : ") if " : " in de_spec else (de_spec.rstrip(" :"), "")
        fields = de_fields.split("|")
        particle = ""
        if len(fields) == 8:  # separable: "an|rufen|..."
            particle, fields = fields[0], [fields[0] + fields[1]] + fields[2:]
        inf, er, past, pp, aux, frame, subj = fields
        out.append(Verb(_en_forms(head), tail, movable, inf, er, past, pp, particle,
                        "sein" if aux == "s" else "haben", frame, frozenset(subj.split()),
                        frozenset(kinds.split())))
    return out


VERBS: list[Verb] = _parse_verbs()
VERBS_BY_FRAME: dict[str, list[Verb]] = {}
for _v in VERBS:
    VERBS_BY_FRAME.setdefault(_v.frame, []).append(_v)

# ------------------------------------------------------------------------------------ pronouns, adverbs

# person index 0..5: ich, du, er/sie/es, wir, ihr, sie. English "you" is always "du" (one reading).
PRONOUNS = {  # key: (English subject, English object, person, nom, acc, dat, possessive en, possessive de stem)
    "I": ("I", "me", 0, "ich", "mich", "mir", "my", "mein"),
    "you": ("you", "you", 1, "du", "dich", "dir", "your", "dein"),
    "he": ("he", "him", 2, "er", "ihn", "ihm", "his", "sein"),
    "she": ("she", "her", 2, "sie", "sie", "ihr", "her", "ihr"),
    "it": ("it", "it", 2, "es", "es", "ihm", "its", "sein"),  # only the weather subject: "it is raining"
    "we": ("we", "us", 3, "wir", "uns", "uns", "our", "unser"),
    "they": ("they", "them", 5, "sie", "sie", "ihnen", "their", "ihr"),
}


@dataclass(frozen=True)
class TimeAdverb:
    en: str
    de: str
    tenses: frozenset[str]  # which tenses it combines with: pres, prog, past, perf, fut, modal
    mid: bool = False       # English position before the main verb ("often sees"), else clause-final


_T = frozenset
TIME_ADVERBS = (
    TimeAdverb("yesterday", "gestern", _T({"past", "modal_past"})),
    TimeAdverb("last week", "letzte Woche", _T({"past", "modal_past"})),
    TimeAdverb("last year", "letztes Jahr", _T({"past", "modal_past"})),
    TimeAdverb("yesterday evening", "gestern Abend", _T({"past", "modal_past"})),
    TimeAdverb("on Monday", "am Montag", _T({"past", "fut", "modal"})),
    TimeAdverb("on Sunday", "am Sonntag", _T({"past", "fut", "modal"})),
    TimeAdverb("today", "heute", _T({"pres", "fut", "modal", "past", "perf"})),
    TimeAdverb("now", "jetzt", _T({"prog", "modal"})),
    TimeAdverb("every day", "jeden Tag", _T({"pres", "modal"})),
    TimeAdverb("every morning", "jeden Morgen", _T({"pres", "modal"})),
    TimeAdverb("in the evening", "am Abend", _T({"pres", "modal", "fut"})),
    TimeAdverb("often", "oft", _T({"pres", "past", "modal"}), mid=True),
    TimeAdverb("sometimes", "manchmal", _T({"pres", "past", "modal"}), mid=True),
    TimeAdverb("usually", "normalerweise", _T({"pres"}), mid=True),
    TimeAdverb("tomorrow", "morgen", _T({"fut", "modal"})),
    TimeAdverb("next week", "nächste Woche", _T({"fut", "modal"})),
    TimeAdverb("soon", "bald", _T({"fut"})),
    TimeAdverb("already", "schon", _T({"perf"}), mid=True),
    TimeAdverb("never", "nie", _T({"perf", "pres"}), mid=True),
)

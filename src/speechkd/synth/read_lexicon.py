"""Word lists of the read-speech grammar (read_speech.py), with inflection helpers. Command vocabulary
(lights, heat, kitchen, music, socks, ...) is included on purpose: pre-training should cover it."""
from __future__ import annotations

from .english_inflection import present_participle, regular_past, third_singular


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


NAMES = _words("""Anna Ben Clara David Emma Frank Grace Henry Isabel Jack Kate Leo Mary Nora Oliver Paul
Rose Sam Tom Victor Alice Bob Carol Daniel Ellen Fiona George Hannah Ian Julia Kevin Laura Martin Nina Oscar
Peter Rachel Simon Tina Walter Adam Beth Chris Diana Eric Helen Irene James Karen Lucy Mark Nathan Olivia
Philip Ruth Steven Thomas Ursula Vera William Zoe Arthur Edith Harold Margaret Edward Eleanor Charles Agnes
Robert Dorothy Hugo Sophie Felix Martha Albert Lily Jasper Maya""")

# countable nouns: (singular, plural or "" for +s/+es rules)
PEOPLE = _words("""man woman child boy girl teacher doctor farmer driver baker soldier student writer
painter sailor king queen prince princess neighbour friend stranger brother sister mother father uncle aunt
cousin captain nurse lawyer judge priest merchant traveller hunter fisherman shepherd servant guard pilot
singer dancer player cook waiter clerk miller carpenter doctor gardener poet scholar officer visitor guest
old_man young_woman""")
ANIMALS = _words("""dog cat horse cow sheep goat pig bird fox wolf bear rabbit mouse deer duck goose owl
eagle crow lion tiger monkey snake frog fish whale dolphin squirrel donkey chicken hen bee butterfly
spider camel elephant""")
THINGS = _words("""book letter table chair door window lamp light box bag coat hat shoe sock glove
ring key knife cup plate bottle glass basket bell clock watch picture map pen pencil paper newspaper
candle blanket pillow bed mirror ladder rope stone stick flower tree leaf branch apple orange bread cake
cheese egg potato carrot tomato sandwich cookie pie juice coffee tea milk water wine soup coin purse wallet
ticket umbrella bicycle car train boat ship wagon cart engine wheel hammer nail brush bucket shelf drawer
carpet curtain radio phone computer camera guitar piano violin drum song story poem message gift toy
ball kite sword shield flag tent barrel jar bowl spoon fork kettle pot pan oven stove heater fan
television speaker button switch remote jacket scarf sweater shirt dress boot""")
PLACES = _words("""kitchen bedroom washroom bathroom garden house room hall library school church
market shop station village town city forest river lake mountain hill valley field farm road street
bridge castle tower island beach harbour office hospital museum theatre cinema restaurant hotel park
garage cellar attic barn stable mill factory prison palace cottage inn bakery square corner""")
MASS = _words("""music bread water milk rice sugar salt snow rain wind sunlight money news advice
furniture silence laughter smoke fire heat time work homework weather traffic""")
ABSTRACT = _words("""idea plan question answer problem reason secret promise chance mistake dream
memory lesson rule game journey adventure meeting party holiday birthday wedding festival war battle
storm accident decision choice truth lie joke price noise voice sound language word name number colour""")

ADJECTIVES = _words("""old young big small little large tiny huge tall short long wide narrow heavy light
dark bright warm cold hot cool quiet loud soft hard rough smooth clean dirty new ancient modern early late
happy sad angry tired hungry thirsty sleepy busy lazy brave clever foolish kind cruel gentle proud shy
friendly strange famous rich poor strong weak quick slow careful careless honest polite rude lucky
beautiful ugly pretty handsome plain lovely wonderful terrible awful pleasant nice fine good bad great
red blue green yellow white black brown grey pink purple golden silver wooden empty full fresh dry wet
sweet bitter sour salty delicious simple difficult easy important serious funny silly dangerous safe
broken open closed hidden secret lonely noisy peaceful crowded famous distant nearby foreign local
favourite curious nervous calm fierce wild tame gentle cheerful gloomy narrow shiny dusty muddy frozen""")

ADVERBS = _words("""quickly slowly quietly loudly carefully suddenly finally early late often never
always sometimes again soon already gently happily sadly angrily politely proudly easily hardly nearly
really quite very rather almost together alone outside inside upstairs downstairs yesterday today
tomorrow tonight""")

TIMES = ("in the morning", "in the evening", "at night", "last week", "last summer", "every day",
         "on Sunday", "on Monday", "after dinner", "before breakfast", "at noon", "in the winter",
         "in the spring", "the next day", "a long time ago", "once upon a time", "after a while",
         "at midnight", "on Friday", "during the storm", "in the afternoon", "this year")
PREPOSITIONS = _words("in on under behind near beside across through into from with without above below")

# transitive verbs: base[:past] (regular past is derived)
TRANSITIVE = _words("""see:saw find:found take:took give:gave bring:brought buy:bought sell:sold make:made
build:built write:wrote read:read open close carry cook clean paint wash fix help love like hate want
need watch hear:heard meet:met call visit follow catch:caught throw:threw hold:held keep:kept leave:left
lose:lost win:won eat:ate drink:drank steal:stole hide:hid break:broke choose:chose forget:forgot
remember notice answer ask thank teach:taught tell:told show:showed send:sent lend:lent borrow fetch
push pull lift drop fill empty count measure miss greet invite protect save warn serve order kick touch
turn switch move place check prefer enjoy play sing:sang draw:drew feed:fed pack pick plant study
wrap mend""")
INTRANSITIVE = _words("""sleep:slept laugh cry smile run:ran walk sing:sang dance wait shout arrive
leave:left fall:fell rise:rose swim:swam fly:flew jump climb travel work rest listen speak:spoke sit:sat
stand:stood return stay disappear hurry wander whisper sigh shiver""")

_IRREGULAR_PLURAL = {"man": "men", "woman": "women", "child": "children", "mouse": "mice", "sheep": "sheep",
                     "deer": "deer", "fish": "fish", "goose": "geese", "fisherman": "fishermen",
                     "old_man": "old_men", "knife": "knives", "leaf": "leaves", "shelf": "shelves",
                     "wolf": "wolves", "life": "lives"}


def plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURAL:
        return _IRREGULAR_PLURAL[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def verb_forms(entry: str) -> tuple[str, str, str, str]:
    """'take:took' -> (take, takes, took, taking)."""
    base, _, past = entry.partition(":")
    return base, third_singular(base), past or regular_past(base), present_participle(base)

"""SNIPS-NLU-like smart-speaker corpus: the 7 intents of the SNIPS NLU benchmark (AddToPlaylist, BookRestaurant,
GetWeather, PlayMusic, RateBook, SearchCreativeWork, SearchScreeningEvent; 13,084 / 700 / 700 text queries, which
the paper probably spoke with a TTS: shared/reference/slu_paper.md, UNCONFIRMED) with slot variety (playlists,
artists, songs, restaurants, cities, dates and times, book titles, ratings, movies, cinemas), split by speaker.

The intents share slot lexicons on purpose, as in SNIPS: an artist or a playlist occurs under PlayMusic and
AddToPlaylist, a title under RateBook and SearchCreativeWork, a movie under SearchCreativeWork and
SearchScreeningEvent, a city and a time under BookRestaurant and GetWeather; the carrier words decide.

Label mapping as smartlights.py: action = the intent name, object = location = "none"; intent_dict lines in
SNIPS_INTENTS order (alphabetical). Slot values stay in the transcript only.
Output: <out>/snips/{train,valid,test}.csv + intent_dict + wavs/<split>/<speaker>/*.wav.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import option
from . import slu_corpus
from .smartlights import number_words

SNIPS_INTENTS: tuple[tuple[str, str, str], ...] = tuple(
    (name, "none", "none") for name in ("AddToPlaylist", "BookRestaurant", "GetWeather", "PlayMusic", "RateBook",
                                        "SearchCreativeWork", "SearchScreeningEvent"))

# invented names and titles (no real catalogue), pronounceable by espeak
_LEXICON: dict[str, tuple[str, ...]] = {
    "artist": ("Nora Vance", "the Silver Foxes", "Marcus Lee", "Ella Brandt", "DJ Kato", "the Night Owls",
               "Ruby Stone", "Leo Martins", "the Paper Kites Band", "Ana Sol", "Jonah Price", "Mia Rivers",
               "the Low Tide", "Oscar Bell", "Kira Moon", "the Brass Hounds"),
    "song": ("Midnight Harbor", "Golden Hour", "Paper Planes Again", "River of Lights", "Slow Summer",
             "Last Train Home", "Neon Rain", "Hold On Tight", "Wild Hearts", "Blue Morning", "Falling Stars",
             "Coffee and Rain"),
    "album": ("Northern Roads", "Electric Garden", "Quiet Storms", "The Long Way", "City of Glass",
              "Songs for Sunday", "Velvet Sky"),
    "playlist": ("Chill Evening", "Rock Classics", "Power Workout", "Road Trip", "Dinner Jazz", "Morning Coffee",
                 "Indie Mix", "Sleep Sounds", "Party Hits", "Study Focus", "Summer Vibes", "Throwback Thursday"),
    "owner": ("my", "my", "our", "her", "his", "the"),
    "track": ("song", "track", "tune", "album", "artist"),
    "genre": ("jazz", "rock", "hip hop", "classical music", "country", "blues", "reggae", "soul", "folk",
              "electronic music", "pop", "metal"),
    "service": ("Spotify", "Deezer", "YouTube", "Pandora", "SoundCloud", "the radio"),
    "decade": ("the eighties", "the nineties", "the seventies", "two thousand five", "nineteen ninety nine",
               "last year"),
    "rtype": ("restaurant", "bistro", "pub", "steakhouse", "sushi bar", "pizzeria", "diner", "cafe",
              "brasserie", "tavern", "food truck", "taverna"),
    "cuisine": ("Thai", "Italian", "Mexican", "Indian", "French", "Korean", "Greek", "Lebanese", "Japanese",
                "Ethiopian", "Vietnamese", "Spanish"),
    "rname": ("The Olive Tree", "Blue Lantern", "Casa Verde", "The Golden Spoon", "Little Saigon", "Harbor Grill",
              "Chez Marie", "The Red Door", "Mama Rosa", "Sakura House"),
    "near": ("near me", "close to my office", "in the neighbourhood", "nearby", "within walking distance",
             "downtown"),
    "party": ("me and my wife", "my family", "my colleagues", "two friends and me", "my parents"),
    "city": ("Boston", "Seattle", "Paris", "Lisbon", "Denver", "Berlin", "Chicago", "Tokyo", "Nairobi", "Dublin",
             "Austin", "Toronto", "Madrid", "Oslo", "Sydney", "Miami"),
    "region": ("Ohio", "Texas", "Oregon", "Florida", "Montana", "Vermont", "Scotland", "Brazil", "Kenya",
               "Portugal", "Norway", "Alaska"),
    "when": ("tomorrow", "tonight", "this weekend", "next Friday", "on Monday morning", "at seven pm", "at noon",
             "in two hours", "the day after tomorrow", "next week", "on the twelfth of March", "at half past eight",
             "this afternoon", "on Sunday evening", "in January", "at nine in the morning"),
    "condition": ("rain", "snow", "be sunny", "be windy", "be foggy", "storm", "be cloudy", "hail"),
    "temp": ("hot", "cold", "warm", "chilly", "freezing", "humid"),
    "book": ("The Silent River", "Winter Roads", "A House of Echoes", "The Clockmaker's Daughter",
             "Notes from the Valley", "The Last Lighthouse", "Ashes and Ink", "Under the Linden Tree",
             "The Glass Orchard", "Small Gods of Autumn"),
    "btype": ("book", "novel", "textbook", "essay", "saga", "chronicle", "album"),
    "rating_unit": ("stars", "points"),
    "work": ("Northern Lights", "The Iron Garden", "Lost Signals", "Paper Moon Saga", "The Quiet Hour",
             "Kingdom of Salt", "Harbor City", "The Secret Orchard", "Echo Valley", "Red Meridian"),
    "wtype": ("TV show", "movie", "game", "song", "book", "painting", "photograph", "trailer", "soundtrack",
              "picture", "album", "series"),
    "movie": ("The Iron Garden", "Lost Signals", "Echo Valley", "Moonrise Express", "The Ninth Door",
              "Storm Chasers", "Red Meridian", "A Quiet Place to Hide", "Space Pirates", "The Long Goodbye"),
    "mtype": ("animated movies", "films", "action movies", "comedies", "horror films", "documentaries",
              "movies"),
    "cinema": ("Regal Cinema", "the Grand Theatre", "Star Cinemas", "the Odeon", "Paradise Theatre",
               "the Roxy", "Cinema City"),
    "venue": ("movie theatre", "cinema", "movie house", "multiplex"),
}

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "AddToPlaylist": (
        "add this {track} to {owner} {playlist} playlist", "add {song} to {owner} {playlist} playlist",
        "add {artist} to the {playlist} playlist", "put {song} by {artist} on {owner} {playlist} list",
        "I want to add a {track} by {artist} to {playlist}", "can you add {song} to {owner} favourites",
        "save this {track} to {owner} {playlist} playlist", "include {artist} in {owner} {playlist} playlist",
        "add the album {album} to {playlist}", "add a {genre} {track} to {owner} {playlist} playlist"),
    "BookRestaurant": (
        "book a table for {n} at a {rtype} in {city} {when}", "I need a reservation for {n} at {rname} {when}",
        "reserve a table at a {cuisine} {rtype} {near} for {n} people", "book a {rtype} for {party} {when}",
        "make a reservation at {rname} in {region} for {n}", "book a spot at a {cuisine} restaurant {when}",
        "I'd like to book a table at a top rated {rtype} {near}",
        "can you get us a table for {n} at a {rtype} in {city}", "reserve {rname} for {party} {when}"),
    "GetWeather": (
        "what will the weather be in {city} {when}", "will it {condition} in {region} {when}",
        "is it going to be {temp} in {city} {when}", "tell me the forecast for {city}",
        "how {temp} will it be {near} {when}", "what's the weather like in {region} {when}",
        "will it {condition} {near} {when}", "weather forecast for {city} {when}",
        "do I need an umbrella in {city} {when}", "is it {temp} in {region} right now"),
    "PlayMusic": (
        "play some {genre} on {service}", "play the latest album by {artist}", "play {song} by {artist}",
        "I want to hear {genre} from {decade}", "put on some {artist}", "play music by {artist} on {service}",
        "play {owner} {playlist} playlist", "play the album {album}", "shuffle {artist} songs from {decade}",
        "can you play {song}", "play a {genre} {track} from {decade} on {service}"),
    "RateBook": (
        "rate this {btype} {r} out of {best}", "give {book} {r} {rating_unit}",
        "I'd rate the current {btype} {r} {rating_unit}", "rate {book} a {r}",
        "give this {btype} a rating of {r} out of {best}", "rate the {btype} {book} {r} out of {best}",
        "I give {book} {r} out of {best} {rating_unit}", "my rating for {book} is {r} {rating_unit}"),
    "SearchCreativeWork": (
        "find the {wtype} {work}", "show me the {wtype} called {work}", "search for the {wtype} {work}",
        "I'm looking for the {wtype} {work}", "where can I find the {wtype} {work}",
        "find a {wtype} called {book}", "look up the {wtype} {movie}", "can you find me {work}",
        "search for the song {song}"),
    "SearchScreeningEvent": (
        "what movies are playing at {cinema} {when}", "find movie schedules for {movie}",
        "when is {movie} showing at the closest {venue}", "is {movie} playing in theatres {near}",
        "show me the showtimes for {mtype} {near}", "which {mtype} are on at {cinema} {when}",
        "find the schedule for {mtype} at {cinema}", "what time is {movie} on {when}",
        "I want to see {movie} at a {venue} {near}", "are there any {mtype} showing {when}"),
}
_POLITE = ("please ", "could you ", "can you ", "hey, ")
_SLOT = re.compile(r"\{(\w+)\}")


def _pick(rng: np.random.Generator, items: tuple[str, ...]) -> str:
    return items[int(rng.integers(len(items)))]


def _slot(name: str, rng: np.random.Generator) -> str:
    if name == "n":  # party size
        return number_words(int(rng.integers(1, 13)))
    if name == "r":  # rating value
        return number_words(int(rng.integers(0, 7)))
    if name == "best":
        return _pick(rng, ("five", "six", "ten"))
    return _pick(rng, _LEXICON[name])


def snips_phrase(intent: tuple[str, str, str], rng: np.random.Generator) -> str:
    """One transcript for `intent`; slots filled left to right, so the text depends on `rng` only."""
    text = _SLOT.sub(lambda m: _slot(m.group(1), rng), _pick(rng, _TEMPLATES[intent[0]]))
    if rng.random() < 0.25 and not text.startswith(("I", "can ", "what", "will ", "is ", "how ", "when ",
                                                      "which ", "where ", "are ", "do ", "my ")):
        text = _pick(rng, _POLITE) + text
    return text[0].upper() + text[1:]


@dataclass
class SnipsSpec:
    train_speakers: int = option(24, "speakers in the training split")
    valid_speakers: int = option(3, "speakers in the validation split")
    test_speakers: int = option(3, "speakers in the test split")
    utts_per_speaker: int = option(30, "utterances each speaker says")


def build_snips(spec: SnipsSpec, out_dir: Path, seed: int, workers: int) -> dict:
    """Synthesise the corpus into out_dir; returns flat stats (snips_<split>_utts, snips_hours, ...)."""
    return slu_corpus.build_corpus("snips", SNIPS_INTENTS, snips_phrase, spec, out_dir, seed, workers)

"""Finding the FAQ topic a typed question means, in Khmer or English.

Khmer is written without spaces between words, so matching cannot rely on words. Text is
folded (NFC, zero-width spaces out, case, accents and punctuation dropped) and cut into
features that need no word boundaries: character n-grams of every Khmer run (2 to 4
characters) with its syllables and syllable pairs. Latin text (English, or Khmer typed in
Latin letters) gives whole words, lightly stemmed and with spelling variants and
near-synonyms folded together ("voting", "voters" -> "vot"; "overseas" -> "abroad"), the 3- to
5-grams inside each word (so "registar" still meets "register"), and word pairs. Small
words ("who", "when", "what is") count too, at a low weight: "who" and "when" tell topics
apart.

Every phrasing of a topic becomes a TF-IDF vector. Two things are measured on a question:
- how close it comes to each topic (cosine with the topic's closest phrasings and with all
  its phrasings together): the evidence that the question is about the FAQ at all;
- which topic it most likely asks, by a classifier trained on the phrasings when the matcher
  is built (multinomial logistic regression over the same vectors, in its kernel form: a
  learned weight per phrasing and topic). It learns which words tell topics apart ("petition"
  is everywhere; "hand in" is not), which plain closeness cannot.
A topic's score is its probability, discounted when the question shares too little with the
topic (below EVIDENCE): small talk and questions outside the FAQ score low even when the
classifier, forced to choose, leans to one topic.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from words.text import fold

# Scores are in [0, 1]. At or above CONFIDENT the answer is given directly; between SUGGEST
# and CONFIDENT the best topic is offered, with the next two if they score ALSO or more;
# below SUGGEST nothing is guessed (and the question is kept for the organisers).
# Chosen on data the evaluation never sees (`python -m bench.faq --tune`). Ten-fold
# cross-validation over the FAQ's own phrasings: 56 % of held-out phrasings answered
# directly (2 % wrongly), 31 % offered topics (28 % with the right one among them), 12 %
# nothing. The off-topic texts of bench/faq_dev.toml: 2 % answered, 27 % offered topics.
CONFIDENT = 0.8
SUGGEST = 0.4
ALSO = 0.1
EVIDENCE = 0.15  # closeness to a topic at which its probability counts in full
NEAREST = 0.5  # closeness: this much from the closest phrasings, the rest the topic's profile
CLOSEST = 5  # phrasings averaged for a topic's nearest closeness
TRAINING_ROUNDS = 100  # gradient steps; fewer keep the classifier from trusting rare words
# A word no phrasing has counts this much of a rare word's weight in a question's length, so
# "help me fill out my tax return" is not close to "how can I help" by its one known word.
UNKNOWN = 0.5

KHMER_NGRAMS = (2, 3, 4)
LATIN_NGRAMS = (3, 4, 5)
WORD_WEIGHT = 3  # a whole word counts more than its pieces
SMALL_WORD_WEIGHT = 2

_KHMER_RUN = re.compile(r"[\u1780-\u17ff\u19e0-\u19ff]+(?: [\u1780-\u17ff\u19e0-\u19ff]+)*")
_LATIN_WORD = re.compile(r"[^\W\d_\u1780-\u17ff\u19e0-\u19ff]+|\d+")
_COENG = "\u17d2"
# "right now", "right away": not the right to vote.
_NOT_RIGHTS = re.compile(r"\bright (now|away|here|there|after|before)\b")
# Latin words that mean little on their own: they count as words, not split into n-grams,
# and are never stemmed. Khmer needs no such list (IDF handles it).
_STOPWORDS = frozenset(
    "a an the is are am be do does did i me my we you your it its of to in on at for and or "  # noqa: SIM905
    "can could how what when where who why which will would should this that there if with "
    "from by as about please hi im".split()
)
# Short forms people type, read before anything else.
_SHORT_FORMS = {
    "u": "you", "r": "are", "ur": "your", "pls": "please", "plz": "please", "ppl": "people",
    "wanna": "want", "abt": "about", "bc": "because", "cuz": "because", "thx": "thanks",
}  # fmt: skip
# Words that mean the same for matching: spelling variants and near-synonyms of the FAQ's
# key words, keyed by the word as typed or by its stem. A word found here is not stemmed.
_SAME = {
    # abroad
    "oversea": "abroad", "overseas": "abroad", "foreign": "abroad", "diaspora": "abroad",
    "expat": "abroad", "expats": "abroad", "outside": "abroad",
    "consulate": "embassy", "consulates": "embassy", "embassies": "embassy",
    "ballot": "vot", "ballots": "vot", "mail": "post", "postal": "post",
    "internet": "online", "electronic": "online", "evoting": "online",
    "america": "usa", "american": "usa", "americans": "usa", "usa": "usa",
    "nation": "country", "nations": "country", "countrys": "country",
    # withdrawing
    "remove": "delet", "removed": "delet", "removing": "delet", "remov": "delet",
    "erase": "delet", "erased": "delet", "eras": "delet", "withdraw": "delet",
    "withdrawal": "delet", "withdrawn": "delet", "withdrw": "delet", "unsign": "delet",
    "retract": "delet", "revoke": "delet", "undo": "delet",
    "signature": "sign", "signatures": "sign", "signiture": "sign", "signed": "sign",
    "signing": "sign",
    # the campaign, its data
    "organizer": "organis", "organizers": "organis", "organiser": "organis",
    "organisers": "organis", "organization": "organis", "organisation": "organis",
    "organizations": "organis", "organisations": "organis", "organize": "organis",
    "organise": "organis", "chatbot": "bot", "bots": "bot",
    "scam": "legit", "legit": "legit", "genuine": "legit", "official": "legit",
    "info": "data", "information": "data", "detail": "data", "details": "data",
    "safe": "safe", "secure": "safe", "security": "safe", "protected": "safe",
    "protect": "safe", "safety": "safe", "dangerous": "safe", "danger": "safe",
    "public": "public", "publish": "public", "published": "public", "publicly": "public",
    "anonymous": "anonym", "anonymously": "anonym",
    # voting and its rules
    "registration": "regist", "registrations": "regist", "enrol": "regist",
    "enroll": "regist", "enrolled": "regist",
    "citizenship": "citizen", "nationality": "citizen", "citizens": "citizen",
    "legal": "law", "laws": "law",
    # the petition, helping, what comes next
    "request": "demand", "requests": "demand", "demanding": "demand",
    "goal": "goal", "goals": "goal", "aim": "goal", "aims": "goal", "purpose": "goal",
    "objective": "goal", "objectives": "goal",
    "donate": "donat", "donation": "donat", "donations": "donat", "money": "donat",
    "fund": "donat", "funds": "donat",
    "submit": "deliv", "submitted": "deliv", "deliver": "deliv", "delivered": "deliv",
    "handed": "deliv", "present": "deliv", "presented": "deliv",
    "result": "result", "results": "result", "outcome": "result", "impact": "result",
    "difference": "result",
    "update": "news", "updates": "news", "news": "news", "notify": "news", "informed": "news",
}  # fmt: skip
_KEEP_ENDINGS = ("ss", "us", "is")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ers", "er", "ed", "es", "s", "ly")
_VOWELS = frozenset("aeiouy")

Vector = dict[str, float]
Index = dict[str, list[tuple[int, float]]]
Array = npt.NDArray[np.floating[Any]]


def khmer_syllables(text: str) -> list[str]:
    """Khmer text cut before each consonant or independent vowel that is not subscript."""
    syllables: list[str] = []
    for index, char in enumerate(text):
        starts = "\u1780" <= char <= "\u17b3" and (index == 0 or text[index - 1] != _COENG)
        if starts or not syllables:
            syllables.append(char)
        else:
            syllables[-1] += char
    return syllables


def stem(word: str) -> str:
    """A light English stem: "voting", "voters" and "voted" all become "vot".

    Only consistency matters (a question and a phrasing go through the same cuts), not
    whether the stem is a real word."""
    if word in _SAME:
        return _SAME[word]
    if len(word) <= 3 or not word.isascii() or word.endswith(_KEEP_ENDINGS):
        return word
    if word.endswith(("ies", "ied")) and len(word) > 4:
        word = word[:-3] + "y"
    else:
        for _round in range(2):  # "registered" -> "register" -> "regist"
            for suffix in _SUFFIXES:
                if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                    word = word[: -len(suffix)]
                    break
            else:
                break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in _VOWELS:
        word = word[:-1]  # "poll" and "polling" alike
    return _SAME.get(word, word)


def features(text: str) -> Counter[str]:
    """The matching features of a text."""
    folded = fold(text)
    found: Counter[str] = Counter()
    for run in _KHMER_RUN.findall(folded):
        joined = run.replace(" ", "")
        for n in KHMER_NGRAMS:
            found.update(f"k{joined[i : i + n]}" for i in range(len(joined) - n + 1))
        syllables = khmer_syllables(joined)
        found.update(f"s{syllable}" for syllable in syllables)
        found.update(f"s{a}{b}" for a, b in itertools.pairwise(syllables))
    latin = _NOT_RIGHTS.sub(r"\1", _KHMER_RUN.sub(" ", folded))
    words = [_SHORT_FORMS.get(word, word) for word in _LATIN_WORD.findall(latin)]
    tokens = []
    for word in words:
        if word in _STOPWORDS:
            found[f"w{word}"] += SMALL_WORD_WEIGHT
            tokens.append(word)
        elif len(word) > 1 or word.isdigit():  # not the "s" of "what's"
            token = stem(word)
            found[f"w{token}"] += WORD_WEIGHT
            padded = f"<{word}>"
            for n in LATIN_NGRAMS:
                found.update(f"l{padded[i : i + n]}" for i in range(len(padded) - n + 1))
            tokens.append(token)
    found.update(f"b{a} {b}" for a, b in itertools.pairwise(tokens))
    return found


@dataclass(frozen=True, slots=True)
class Match:
    """A topic and how well a question fits it (0 to 1)."""

    topic: str
    score: float


def _index(vectors: Iterable[Vector]) -> Index:
    index: Index = {}
    for number, vector in enumerate(vectors):
        for feature, weight in vector.items():
            index.setdefault(feature, []).append((number, weight))
    return index


def _scores(query: Vector, index: Index) -> dict[int, float]:
    """Cosine of the (normalised) query with every indexed vector that shares a feature."""
    scores: dict[int, float] = {}
    for feature, weight in query.items():
        for number, other in index.get(feature, ()):
            scores[number] = scores.get(number, 0.0) + weight * other
    return scores


# Features in at least this many phrasings go through a dense matrix product when the
# classifier is trained; the rarer ones are added one by one.
_DENSE_FROM = 8


def _cosines(vectors: Sequence[Vector], index: Index) -> Array:
    """Every phrasing's cosine with every other (its Gram matrix)."""
    count = len(vectors)
    gram = np.zeros((count, count))
    common = [feature for feature, postings in index.items() if len(postings) >= _DENSE_FROM]
    dense = np.zeros((count, len(common)))
    for column, feature in enumerate(common):
        for row, weight in index[feature]:
            dense[row, column] = weight
    gram += dense @ dense.T
    for postings in index.values():
        if len(postings) < _DENSE_FROM:
            for row, weight in postings:
                for column, other in postings:
                    gram[row, column] += weight * other
    return gram


def _train(gram: Array, labels: Sequence[int], topics: int) -> tuple[Array, Array]:
    """Multinomial logistic regression in kernel form: (a weight per phrasing and topic,
    a bias per topic), by gradient steps in the space of the scores."""
    count = len(labels)
    if not count:
        return np.zeros((0, topics)), np.zeros(topics)
    gram = gram.astype(np.float32)  # twice as fast as float64, and as good here
    truth = np.zeros((count, topics), dtype=np.float32)
    truth[np.arange(count), labels] = 1.0
    weights = np.zeros((count, topics), dtype=np.float32)
    bias = np.zeros(topics, dtype=np.float32)
    # The largest eigenvalue of the Gram matrix bounds the step (power iteration).
    vector: Array = np.ones(count, dtype=np.float32)
    for _ in range(30):
        vector = gram @ vector
        vector /= np.linalg.norm(vector) or 1.0
    step = np.float32(4.0 / max(float(vector @ gram @ vector), 1.0))
    for _ in range(TRAINING_ROUNDS):
        error = _softmax(gram @ weights + bias) - truth
        weights -= step * error
        bias -= step * error.mean(axis=0)
    return weights.astype(np.float64), bias.astype(np.float64)


def _softmax(logits: Array) -> Array:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    result: Array = shifted / shifted.sum(axis=-1, keepdims=True)
    return result


@dataclass(frozen=True, slots=True)
class _Model:
    idf: dict[str, float]
    topics: list[str]
    phrasing_topic: list[int]  # the topic (index in topics) of each phrasing
    phrasings: Index
    profiles: Index  # a topic's texts all together, by topic index
    weights: Array
    bias: Array
    unknown: float  # the IDF of a feature no phrasing has


def _vector(found: Counter[str], idf: dict[str, float], unknown: float = 0.0) -> Vector:
    """TF-IDF, normalised. Features no phrasing has weigh `unknown` in the norm: a question
    made mostly of words the FAQ never uses comes out far from every topic."""
    weights = {}
    missing = 0.0
    for feature, count in found.items():
        weight = (1 + math.log(count)) * idf.get(feature, unknown)
        if feature in idf:
            weights[feature] = weight
        else:
            missing += weight * weight
    norm = math.sqrt(sum(weight * weight for weight in weights.values()) + missing) or 1.0
    return {feature: weight / norm for feature, weight in weights.items()}


@functools.lru_cache(maxsize=4)  # the bot and the tests build the same FAQ again and again
def _model(examples: tuple[tuple[str, str], ...]) -> _Model:
    pairs = [(topic, features(text)) for topic, text in examples]
    frequency: Counter[str] = Counter()
    for _topic, found in pairs:
        frequency.update(found.keys())
    documents = len(pairs) or 1
    idf = {
        feature: math.log((1 + documents) / (1 + count)) + 1.0
        for feature, count in frequency.items()
    }
    topics = sorted({topic for topic, _ in pairs})
    number = {topic: position for position, topic in enumerate(topics)}
    profiles: list[Counter[str]] = [Counter() for _ in topics]
    for topic, found in pairs:
        profiles[number[topic]].update(found)
    vectors = [_vector(found, idf) for _, found in pairs]
    # Inverted indexes (feature -> who has it, with what weight): a question touches only
    # the phrasings that share a feature with it.
    phrasings = _index(vectors)
    labels = [number[topic] for topic, _ in pairs]
    weights, bias = _train(_cosines(vectors, phrasings), labels, len(topics))
    return _Model(
        idf=idf,
        topics=topics,
        phrasing_topic=labels,
        phrasings=phrasings,
        profiles=_index(_vector(found, idf) for found in profiles),
        weights=weights,
        bias=bias,
        unknown=math.log(1 + documents) + 1.0,
    )


class Matcher:
    """Closeness over TF-IDF features and a classifier trained on every topic's texts."""

    def __init__(self, examples: Iterable[tuple[str, str]]) -> None:
        """`examples` are (topic id, a text that asks it) pairs, in any language."""
        self._model = _model(tuple(examples))
        self.topics = self._model.topics

    def rank(self, question: str) -> list[Match]:
        """Every topic with its score, best first."""
        model = self._model
        if not model.topics:
            return []
        query = _vector(features(question), model.idf, model.unknown * UNKNOWN)
        found = _scores(query, model.phrasings)
        closest: list[list[float]] = [[] for _ in model.topics]
        cosines = np.zeros(len(model.phrasing_topic))
        for index, score in found.items():
            closest[model.phrasing_topic[index]].append(score)
            cosines[index] = score
        profile = _scores(query, model.profiles)
        probabilities = _softmax(cosines @ model.weights + model.bias)
        matches = []
        for number, topic in enumerate(model.topics):
            # The mean of a topic's few closest phrasings: one lucky phrasing weighs less
            # than several that agree.
            nearest = sum(heapq.nlargest(CLOSEST, closest[number])) / CLOSEST
            closeness = NEAREST * nearest + (1 - NEAREST) * profile.get(number, 0.0)
            evidence = min(1.0, closeness / EVIDENCE)
            matches.append(Match(topic, float(probabilities[number]) * evidence))
        return sorted(matches, key=lambda match: -match.score)

    def answer(self, question: str) -> tuple[Match | None, Sequence[Match]]:
        """(the topic to answer with, if sure; otherwise up to three to offer, maybe none)."""
        ranked = self.rank(question)
        if not ranked or ranked[0].score < SUGGEST:
            return None, []
        if ranked[0].score >= CONFIDENT:
            return ranked[0], []
        return None, [ranked[0], *(match for match in ranked[1:3] if match.score >= ALSO)]

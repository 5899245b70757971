"""Finding the FAQ topic a typed question means, in Khmer or English.

Khmer is written without spaces between words, so matching cannot rely on words. Text is
folded (NFC, zero-width spaces out, case, accents and punctuation dropped) and cut into
features that need no word boundaries: character n-grams of every Khmer run (2 to 4
characters: a syllable and its neighbours), and for Latin text whole words plus the 3- to
5-grams inside each word (so "registar" still meets "register"). Each phrasing of a topic
becomes a TF-IDF vector; a question scores a topic by its closest phrasing (cosine).

Features seen in many topics ("what", "can", "តើ", "បាន") weigh little; a greeting or a
question about the weather shares almost nothing with any phrasing and scores near zero,
which is how off-topic text is told apart.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.text import fold

# Scores are cosines in [0, 1]. At or above CONFIDENT the answer is given directly; between
# SUGGEST and CONFIDENT the closest topics are offered; below SUGGEST nothing is guessed.
# Chosen on data the evaluation never sees: leave-one-out over the FAQ's own phrasings
# (at 0.26 and a 0.02 lead, 46 % are answered directly, 90 % of them rightly; the rest get
# suggestions) and the small talk in bench/faq_dev.toml (1 % of it is answered).
CONFIDENT = 0.26
SUGGEST = 0.21
MARGIN = 0.02  # a confident answer must also lead the runner-up by this much
NEAREST = 0.5  # a topic's score: this much from its closest phrasings, the rest its profile
CLOSEST = 5  # phrasings averaged for a topic's nearest score

_KHMER_RUN = re.compile(r"[\u1780-\u17ff\u19e0-\u19ff]+(?: [\u1780-\u17ff\u19e0-\u19ff]+)*")
_LATIN_WORD = re.compile(r"[^\W\d_\u1780-\u17ff\u19e0-\u19ff]{2,}|\d+")
# Latin words that carry no meaning on their own; Khmer needs no such list (IDF handles it).
_STOPWORDS = frozenset(
    "a an the is are am be do does did i me my we you your it its of to in on at for and or "  # noqa: SIM905
    "can could how what when where who why which will would should this that there if with "
    "from by as about please pls hi".split()
)


KHMER_NGRAMS = (2, 3, 4)
_COENG = "\u17d2"


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
    latin = _KHMER_RUN.sub(" ", folded)
    words = [word for word in _LATIN_WORD.findall(latin) if word not in _STOPWORDS]
    for word in words:
        found[f"w{word}"] += 2  # a whole word counts more than its pieces
        padded = f"<{word}>"
        for n in (3, 4, 5):
            found.update(f"l{padded[i : i + n]}" for i in range(len(padded) - n + 1))
    return found


@dataclass(frozen=True, slots=True)
class Match:
    """A topic and how well a question fits it (0 to 1)."""

    topic: str
    score: float


Index = dict[str, list[tuple[int, float]]]


def _index(vectors: Iterable[dict[str, float]]) -> Index:
    index: Index = {}
    for number, vector in enumerate(vectors):
        for feature, weight in vector.items():
            index.setdefault(feature, []).append((number, weight))
    return index


def _scores(query: dict[str, float], index: Index) -> dict[int, float]:
    """Cosine of the (normalised) query with every indexed vector that shares a feature."""
    scores: dict[int, float] = {}
    for feature, weight in query.items():
        for number, other in index.get(feature, ()):
            scores[number] = scores.get(number, 0.0) + weight * other
    return scores


class Matcher:
    """TF-IDF over character n-grams; built once from every topic's texts."""

    def __init__(self, examples: Iterable[tuple[str, str]]) -> None:
        """`examples` are (topic id, a text that asks it) pairs, in any language."""
        pairs = [(topic, features(text)) for topic, text in examples]
        documents = len(pairs) or 1
        frequency: Counter[str] = Counter()
        for _topic, found in pairs:
            frequency.update(found.keys())
        self._idf = {
            feature: math.log((1 + documents) / (1 + count)) + 1.0
            for feature, count in frequency.items()
        }
        self.topics = sorted({topic for topic, _ in pairs})
        # Each topic's profile: all its texts together, for wordings that mix its parts.
        profiles: dict[str, Counter[str]] = {}
        for topic, found in pairs:
            profiles.setdefault(topic, Counter()).update(found)
        # Inverted indexes (feature -> who has it, with what weight): a question touches only
        # the phrasings that share a feature with it.
        self._phrasing_topic = [topic for topic, _ in pairs]
        self._phrasings = _index(self._vector(found) for _, found in pairs)
        self._profile_topic = list(profiles)
        self._profiles = _index(self._vector(found) for found in profiles.values())

    def _vector(self, found: Counter[str]) -> dict[str, float]:
        weights = {
            feature: (1 + math.log(count)) * self._idf[feature]
            for feature, count in found.items()
            if feature in self._idf
        }
        norm = math.sqrt(sum(weight * weight for weight in weights.values())) or 1.0
        return {feature: weight / norm for feature, weight in weights.items()}

    def rank(self, question: str) -> list[Match]:
        """Every topic with its score, best first."""
        query = self._vector(features(question))
        per_topic: dict[str, list[float]] = {topic: [] for topic in self.topics}
        for index, score in _scores(query, self._phrasings).items():
            per_topic[self._phrasing_topic[index]].append(score)
        # The mean of a topic's few closest phrasings: one lucky phrasing of a neighbouring
        # topic weighs less than several that agree (leave-one-out: +4 points in Khmer).
        nearest = {
            topic: sum(heapq.nlargest(CLOSEST, found)) / CLOSEST
            for topic, found in per_topic.items()
        }
        profile = {
            self._profile_topic[index]: score
            for index, score in _scores(query, self._profiles).items()
        }
        scores = {
            topic: NEAREST * nearest[topic] + (1 - NEAREST) * profile.get(topic, 0.0)
            for topic in self.topics
        }
        return sorted((Match(t, s) for t, s in scores.items()), key=lambda m: -m.score)

    def answer(self, question: str) -> tuple[Match | None, Sequence[Match]]:
        """(the topic to answer with, if sure; otherwise up to three to offer, maybe none)."""
        ranked = self.rank(question)
        top = ranked[0] if ranked else None
        if top is None or top.score < SUGGEST:
            return None, []
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        if top.score >= CONFIDENT and top.score - runner_up >= MARGIN:
            return top, []
        return None, [match for match in ranked[:3] if match.score >= SUGGEST]

"""How well the FAQ matcher answers: top-1 accuracy per language, off-topic rejection, speed.

The evaluation phrasings (bench/faq_eval.toml) are written apart from the phrasings the
matcher learns from (locales/faq.toml), so the figures say how it does on new wordings.

    python -m bench.faq [--faq locales/faq.toml] [--eval bench/faq_eval.toml] [--misses]

Tune the matcher with `--tune`, never on the evaluation set: it holds out each tenth of the
FAQ's own phrasings in turn and matches them against the rest (`--folds 0`: one phrasing at a
time, slow), then matches the development set (bench/faq_dev.toml: new English wordings and
off-topic texts), and prints what the thresholds do on both.

    python -m bench.faq --tune [--folds 10] [--dev bench/faq_dev.toml] [--misses]
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
import zlib
from collections import defaultdict
from pathlib import Path

from handlers.reading.content import build_matcher
from handlers.reading.faq_content import Topic, load_faq
from handlers.reading.faq_match import Matcher

ROOT = Path(__file__).resolve().parent.parent
TARGET_ACCURACY = 0.90
TARGET_REJECTION = 0.90
TARGET_MS = 5.0


def main(argv: list[str] | None = None) -> int:
    """Print the figures; exit 1 when the evaluation file names an unknown topic."""
    parser = argparse.ArgumentParser(prog="python -m bench.faq", description=__doc__)
    parser.add_argument("--faq", type=Path, default=ROOT / "locales" / "faq.toml")
    parser.add_argument("--eval", type=Path, default=ROOT / "bench" / "faq_eval.toml")
    parser.add_argument("--misses", action="store_true", help="list every miss")
    parser.add_argument("--tune", action="store_true", help="cross-validation and dev set")
    parser.add_argument("--folds", type=int, default=10, help="0: leave one out")
    parser.add_argument("--dev", type=Path, default=ROOT / "bench" / "faq_dev.toml")
    args = parser.parse_args(argv)
    if args.tune:
        return tune(load_faq(args.faq), args.dev, args.folds, misses=args.misses)

    matcher = build_matcher(load_faq(args.faq))
    with args.eval.open("rb") as handle:
        data = tomllib.load(handle)
    unknown = {case["expect"] for case in data["case"]} - set(matcher.topics)
    if unknown:
        print(f"unknown topics in {args.eval}: {sorted(unknown)}", file=sys.stderr)
        return 1

    top1: dict[str, list[bool]] = defaultdict(list)
    answered: dict[str, list[bool]] = defaultdict(list)
    rejected: dict[str, list[bool]] = defaultdict(list)
    timings: list[float] = []
    misses: list[str] = []
    for case in data["case"]:
        started = time.perf_counter()
        confident, _offered = matcher.answer(case["text"])
        timings.append(time.perf_counter() - started)
        ranked = matcher.rank(case["text"])
        top1[case["lang"]].append(ranked[0].topic == case["expect"])
        answered[case["lang"]].append(confident is not None and confident.topic == case["expect"])
        if ranked[0].topic != case["expect"]:
            misses.append(
                f"  {case['lang']} {case['text']!r}: expected {case['expect']}, "
                f"got {ranked[0].topic} ({ranked[0].score:.2f})"
            )
    for text in data["off_topic"]:
        started = time.perf_counter()
        confident, _offered = matcher.answer(text["text"])
        timings.append(time.perf_counter() - started)
        rejected[text["lang"]].append(confident is None)
        if confident is not None:
            misses.append(
                f"  {text['lang']} off-topic {text['text']!r} answered as {confident.topic} "
                f"({confident.score:.2f})"
            )

    def share(values: list[bool]) -> float:
        return sum(values) / len(values) if values else 0.0

    print(
        f"{len(matcher.topics)} topics; {len(data['case'])} questions, "
        f"{len(data['off_topic'])} off-topic texts\n"
    )
    print(
        f"{'language':8}  {'cases':>5}  {'top-1':>6}  {'answered right':>14}  "
        f"{'off-topic':>9}  {'rejected':>8}"
    )
    verdicts = []
    for language in ("km", "en"):
        accuracy, rejection = share(top1[language]), share(rejected[language])
        verdicts.append(accuracy >= TARGET_ACCURACY and rejection >= TARGET_REJECTION)
        print(
            f"{language:8}  {len(top1[language]):5}  {accuracy:6.1%}  "
            f"{share(answered[language]):14.1%}  {len(rejected[language]):9}  {rejection:8.1%}"
        )
    mean_ms = sum(timings) / len(timings) * 1000
    worst_ms = max(timings) * 1000
    print(
        f"\ntime per question (what the bot does with a typed question): "
        f"mean {mean_ms:.2f} ms, max {worst_ms:.2f} ms"
    )
    passed = all(verdicts) and mean_ms < TARGET_MS
    print(
        f"target (top-1 >= {TARGET_ACCURACY:.0%} and off-topic rejection >= "
        f"{TARGET_REJECTION:.0%} in each language, < {TARGET_MS:g} ms): "
        f"{'PASS' if passed else 'FAIL'}"
    )
    if args.misses and misses:
        print("\nmisses:")
        print("\n".join(misses))
    return 0


def _language(text: str) -> str:
    return "km" if any("\u1780" <= char <= "\u17ff" for char in text) else "en"


class _Tally:
    """Top-1 and what the thresholds do, per language."""

    def __init__(self) -> None:
        self.top1: dict[str, list[bool]] = defaultdict(list)
        self.right: dict[str, list[bool]] = defaultdict(list)
        self.wrong: dict[str, list[bool]] = defaultdict(list)
        self.misses: list[str] = []

    def add(self, matcher: Matcher, language: str, text: str, expect: str) -> None:
        best = matcher.rank(text)[0]
        sure, _offered = matcher.answer(text)
        self.top1[language].append(best.topic == expect)
        self.right[language].append(sure is not None and sure.topic == expect)
        self.wrong[language].append(sure is not None and sure.topic != expect)
        if best.topic != expect:
            self.misses.append(
                f"  {language} {text!r}: expected {expect}, got {best.topic} ({best.score:.2f})"
            )

    def print(self, title: str) -> None:
        print(f"{title}\n{'language':8}  {'cases':>5}  {'top-1':>6}  {'answered right':>14}  "
              f"{'answered wrong':>14}")  # fmt: skip
        for language in sorted(self.top1, reverse=True):
            top1 = self.top1[language]
            print(
                f"{language:8}  {len(top1):5}  {_share(top1):6.1%}  "
                f"{_share(self.right[language]):14.1%}  {_share(self.wrong[language]):14.1%}"
            )


def _share(values: list[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def _examples(topics: list[Topic]) -> list[tuple[str, str, str]]:
    """(topic id, language, text) for every question and phrasing, as build_matcher uses."""
    found = []
    for topic in topics:
        for language, text in topic.texts.items():
            found += [(topic.id, language, text.question)]
            found += [(topic.id, language, phrasing) for phrasing in text.phrasings]
    return found


def tune(topics: list[Topic], dev: Path, folds: int, *, misses: bool) -> int:
    """Figures to tune on: cross-validation over the FAQ's phrasings, then the dev set."""
    examples = _examples(topics)
    count = len(examples)
    # A phrasing's fold comes from its text, so adding phrasings does not reshuffle the others.
    groups = [[i] for i in range(count)] if folds <= 0 else [
        [i for i, (_t, _l, text) in enumerate(examples) if zlib.crc32(text.encode()) % folds == k]
        for k in range(folds)
    ]  # fmt: skip
    held_out = _Tally()
    for group in groups:
        left_out = set(group)
        matcher = Matcher(
            (topic, text) for i, (topic, _l, text) in enumerate(examples) if i not in left_out
        )
        for i in group:
            topic, language, text = examples[i]
            held_out.add(matcher, language, text, topic)
    name = "leave-one-out" if folds <= 0 else f"{folds}-fold cross-validation"
    held_out.print(f"{name} over the FAQ's {count} questions and phrasings")

    matcher = build_matcher(topics)
    with dev.open("rb") as handle:
        data = tomllib.load(handle)
    on_topic = _Tally()
    for case in data.get("case", []):
        on_topic.add(matcher, case["lang"], case["text"], case["expect"])
    print()
    on_topic.print(f"development set ({dev.name})")
    rejected: dict[str, list[bool]] = defaultdict(list)
    answered: list[str] = []
    texts = [(_language(text), text) for text in data.get("off_topic", [])]
    texts += [(case["lang"], case["text"]) for case in data.get("off_topic_case", [])]
    for language, text in texts:
        sure, _offered = matcher.answer(text)
        rejected[language].append(sure is None)
        if sure is not None:
            answered.append(f"  {language} off-topic {text!r} answered as {sure.topic} "
                            f"({sure.score:.2f})")  # fmt: skip
    print("off-topic rejected: " + ", ".join(
        f"{language} {_share(found):.1%} of {len(found)}"
        for language, found in sorted(rejected.items(), reverse=True)
    ))  # fmt: skip
    if misses:
        print("\nmisses:")
        print("\n".join(held_out.misses + on_topic.misses + answered))
    return 0


if __name__ == "__main__":
    sys.exit(main())

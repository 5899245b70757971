"""How well the FAQ matcher answers: top-1 accuracy per language, off-topic rejection, speed.

The evaluation phrasings (bench/faq_eval.toml) are written apart from the phrasings the
matcher learns from (locales/faq.toml), so the figures say how it does on new wordings.

    python -m bench.faq [--faq locales/faq.toml] [--eval bench/faq_eval.toml] [--misses]
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path

from handlers.faq import build_matcher
from handlers.faq_content import load_faq

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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())

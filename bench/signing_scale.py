"""`make bench`: the signing flow on an empty database and on one with 100,000 signatures
already in it, on SQLite and on PostgreSQL, next to the echo bot.

Each configuration runs `python -m bench.signing` in a process of its own (the same signers,
the same seed, the same pauses): the echo bot, the petition flow saturated (200 signers at
once), paced (50 at once, pausing about 500 ms before each step: some 100 updates a second
offered, well below what the machine handles, so that the p99 is the time an update takes,
not the time it queues), and paced again while an organiser sends /stats every 2 s. Then one
table compares them.

The targets, for each engine:
- with 100,000 signatures in the database, the throughput (the saturated run) and the p99
  (the paced run) are within 10 % of the empty database's;
- /stats sent meanwhile moves the signers' p99 (paced) by at most 50 ms, in every
  configuration.
A target missed prints a FAILED line and the exit status is 1. The echo bot's throughput is
shown beside each configuration: when it moved too, the machine itself was busier. Within the
run with /stats, the p99 of the signers' updates in hand while a /stats was (from the command
to its chart) is also shown against the others' ("in/out"): the same run, so free of the
drift between two runs, a check on what "moved" says.

    python -m bench.signing_scale [--signers 400] [--concurrency 200]
        [--paced-concurrency 50] [--preload 100000] [--think-ms 500] [--stats-every 2]
        [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.signing import PG_URL

RATE_TOLERANCE = 0.10  # throughput at most 10 % lower than with an empty database
P99_TOLERANCE = 0.10  # p99 at most 10 % higher
STATS_MOVE_MS = 50.0  # what /stats may add to the signers' p99
# A paced run offering more than this share of the saturated throughput is queueing too.
BUSY = 0.7
ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass(frozen=True, slots=True)
class Config:
    """One run: an engine, and how many signatures are in the database first."""

    engine: str
    preload: int

    @property
    def name(self) -> str:
        """How the table and the FAILED lines call it."""
        size = f"{self.preload:,}" if self.preload else "empty"
        return f"{ENGINE_NAMES[self.engine]}, {size}"


def run(config: Config, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """One configuration in a process of its own, its output shown as it comes; its figures
    (with `crashed` set when it left none)."""
    figures = folder / f"{config.engine}-{config.preload}.json"
    command = [
        sys.executable, "-m", "bench.signing", "--engine", config.engine,
        "--preload", str(config.preload), "--signers", str(args.signers),
        "--concurrency", str(args.concurrency),
        "--paced-concurrency", str(args.paced_concurrency), "--think-ms", str(args.think_ms),
        "--stats-every", str(args.stats_every), "--pg-url", args.pg_url,
        "--json", str(figures),
    ]  # fmt: skip
    print(f"\n=== {config.name} ===", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, check=False)  # noqa: S603  our own interpreter and module
    seconds = time.perf_counter() - started
    print(f"({config.name}: {seconds:.0f} s)", flush=True)
    if not figures.exists():
        return {"crashed": done.returncode, "seconds": seconds}
    return {**json.loads(figures.read_text()), "seconds": seconds}


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def print_summary(results: dict[Config, dict[str, Any]]) -> None:
    """One row per configuration: throughput, paced p50 and p99, each against the empty
    database on the same engine, and what /stats did to the p99: the paced run with /stats
    against the one without ("moved"), and within the run with /stats, the p99 of updates in
    hand while a /stats was against the others' ("in/out", free of the drift between runs)."""
    header = (
        "", "preload s", "echo upd/s", "upd/s", "vs empty", "p50 ms", "p99 ms", "vs empty",
        "+/stats p99", "moved ms", "in/out ms", "/stats n", "p50/max ms", "run s",
    )  # fmt: skip
    rows = []
    for config, result in results.items():
        if "crashed" in result:
            rows.append((config.name, "crashed", *[""] * (len(header) - 2)))
            continue
        empty = results.get(Config(config.engine, 0), {})
        saturated, paced = result["saturated"], result["paced"]
        probed, stats = result.get("probed"), result.get("stats")
        inside, outside = result.get("inside"), result.get("outside")
        base = empty.get("saturated"), empty.get("paced")
        rows.append((
            config.name,
            f"{result['preload_seconds']:.1f}" if config.preload else "-",
            f"{result['echo']['rate']:.0f}",
            f"{saturated['rate']:.0f}",
            _ratio(saturated["rate"], base[0]["rate"]) if config.preload and base[0] else "",
            f"{paced['p50']:.1f}",
            f"{paced['p99']:.1f}",
            _ratio(paced["p99"], base[1]["p99"]) if config.preload and base[1] else "",
            f"{probed['p99']:.1f}" if probed else "-",
            f"{probed['p99'] - paced['p99']:+.1f}" if probed else "-",
            f"{inside['p99']:.0f}/{outside['p99']:.0f}" if inside and outside else "-",
            f"{stats['updates']}" if stats else "-",
            f"{stats['p50']:.0f}/{stats['max']:.0f}" if stats else "-",
            f"{result['seconds']:.0f}",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))


def failures(results: dict[Config, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(the targets missed and the problems the runs found, notes on the machine's noise)."""
    failed: list[str] = []
    notes: list[str] = []
    for config, result in results.items():
        if "crashed" in result:
            failed.append(f"{config.name}: the run stopped (exit {result['crashed']})")
            continue
        failed += [f"{config.name}: {problem}" for problem in result["problems"]]
        probed, paced, saturated = result.get("probed"), result["paced"], result["saturated"]
        # Each signer offers at most one update per pause.
        at_once = result.get("paced_concurrency", result["concurrency"])
        offered, capacity = 1000 * at_once / result["think_ms"], saturated["rate"]
        if offered > BUSY * capacity:
            notes.append(
                f"{config.name}: the paced run offers up to {offered:.0f} upd/s, "
                f"{offered / capacity:.0%} of the {capacity:.0f} handled saturated: its p99 is "
                f"largely queueing (fewer signers at once, e.g. PACED_CONCURRENCY=25, stay "
                f"below)"
            )
        if probed is not None:
            moved = probed["p99"] - paced["p99"]
            if moved > STATS_MOVE_MS:
                failed.append(
                    f"{config.name}: /stats moves the signers' p99 by {moved:+.1f} ms "
                    f"({paced['p99']:.1f} -> {probed['p99']:.1f} ms; target <= "
                    f"{STATS_MOVE_MS:+.0f} ms)"
                )
        empty = results.get(Config(config.engine, 0))
        if not config.preload or empty is None or "crashed" in empty:
            continue
        rate, base_rate = saturated["rate"], empty["saturated"]["rate"]
        if rate < (1 - RATE_TOLERANCE) * base_rate:
            failed.append(
                f"{config.name}: throughput {rate:.0f} upd/s, {rate / base_rate:.0%} of the "
                f"empty database's {base_rate:.0f} (target >= {1 - RATE_TOLERANCE:.0%})"
            )
        p99, base_p99 = paced["p99"], empty["paced"]["p99"]
        if p99 > (1 + P99_TOLERANCE) * base_p99:
            failed.append(
                f"{config.name}: p99 {p99:.1f} ms, {p99 / base_p99:.0%} of the empty "
                f"database's {base_p99:.1f} ms (target <= {1 + P99_TOLERANCE:.0%})"
            )
        echo, base_echo = result["echo"]["rate"], empty["echo"]["rate"]
        if abs(echo - base_echo) > RATE_TOLERANCE * base_echo:
            notes.append(
                f"{config.name}: the echo bot too ran at {echo / base_echo:.0%} of its rate "
                f"beside the empty database: the machine's load changed between the runs"
            )
    return failed, notes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.signing_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--signers", type=int, default=400, help="per configuration (400)")
    parser.add_argument(
        "--concurrency", type=int, default=200, help="signers at once, saturated (200)"
    )
    parser.add_argument(
        "--paced-concurrency", type=int, default=50,
        help="signers at once in the paced runs (50): below what the machine handles, so "
        "that the p99 compared is latency, not queueing",
    )  # fmt: skip
    parser.add_argument(
        "--preload", type=int, default=100_000, help="signatures in the full database (100000)"
    )
    parser.add_argument(
        "--think-ms", type=float, default=500.0, help="mean pause in the paced runs (500 ms)"
    )
    parser.add_argument(
        "--stats-every", type=float, default=2.0, help="seconds between two /stats (2)"
    )
    parser.add_argument(
        "--engines", default="sqlite,postgresql", help="comma-separated (sqlite,postgresql)"
    )
    parser.add_argument("--pg-url", default=PG_URL, help=f"for bench.signing ({PG_URL})")
    args = parser.parse_args(argv)
    args.engines = [engine.strip() for engine in args.engines.split(",") if engine.strip()]
    unknown = [engine for engine in args.engines if engine not in ENGINE_NAMES]
    if unknown or not args.engines:
        parser.error(f"--engines: {', '.join(unknown) or 'none'}; choose from sqlite,postgresql")
    if args.preload < 1 or args.stats_every <= 0:
        parser.error("--preload and --stats-every must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Every configuration, then the table and the verdict."""
    args = parse_args(argv)
    configs = [Config(engine, size) for engine in args.engines for size in (0, args.preload)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="petitionbot-bench-scale-") as folder:
        results = {config: run(config, args, Path(folder)) for config in configs}
    print(
        f"\n=== {args.signers} signers per run, {args.concurrency} at once saturated and "
        f"{args.paced_concurrency} paced; throughput from the saturated run, p50 and p99 "
        f"from the paced run ({args.think_ms:g} ms pauses), "
        f"/stats every {args.stats_every:g} s in a second paced run (moved: its p99 less the "
        f"first's; in/out: its p99 while a /stats was in hand, and otherwise); "
        f"{time.perf_counter() - started:.0f} s in all ==="
    )
    print_summary(results)
    failed, notes = failures(results)
    for note in notes:
        print(f"note: {note}")
    for failure in failed:
        print(f"FAILED: {failure}")
    if not failed:
        print(
            f"PASS: {args.preload:,} signatures cost at most {RATE_TOLERANCE:.0%} of throughput "
            f"and p99; /stats moves p99 by at most {STATS_MOVE_MS:.0f} ms"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

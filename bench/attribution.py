"""Attribution accuracy of dynamic pools across pool sizes, hold times and allocation strategies.

Runs ``tracking.poolsim`` (simulated traffic with ground truth, attributed by the hub's real scoring) over a
grid and prints a Markdown table: session and channel accuracy, share of calls given a session, fallback
rate, utilisation, calibration error of the session confidence, and the accuracy of the naive rule "the
latest holder of the number called" measured on the same calls (the baseline; the ratio column divides by
it). Stops starting new runs once ``--budget`` seconds have passed.

    python bench/attribution.py [--days 7] [--sessions-per-day 2000] [--budget 240]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tracking.poolsim import PoolConfig, Traffic, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--sessions-per-day", type=float, default=2000.0)
    parser.add_argument("--call-rate", type=float, default=0.05)
    parser.add_argument("--sizes", default="10,20,30,40,60,80")
    parser.add_argument("--holds", default="300,900,1800")
    parser.add_argument("--strategies", default="lru,mru,random")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=240.0, help="seconds")
    args = parser.parse_args()

    traffic = Traffic(sessions_per_day=args.sessions_per_day, call_rate=args.call_rate)
    began = time.monotonic()
    print(
        f"traffic: {args.sessions_per_day:.0f} sessions/day, daily cycle, "
        f"{traffic.returning_share:.0%} returning, call rate {args.call_rate:.0%} "
        f"({traffic.during_share:.0%} during the visit, {traffic.soon_share:.0%} within minutes, "
        f"the rest hours later); {args.days} days; grace 300 s"
    )
    print()
    print(
        "| strategy | pool | hold s | calls | session acc | channel acc | identified | fallback "
        "| utilisation | calib. err | naive acc | acc / naive |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    skipped = 0
    for strategy in args.strategies.split(","):
        for hold in (int(x) for x in args.holds.split(",")):
            for size in (int(x) for x in args.sizes.split(",")):
                if time.monotonic() - began > args.budget:
                    skipped += 1
                    continue
                r = simulate(
                    traffic, PoolConfig(size, hold_seconds=hold, strategy=strategy), args.days, args.seed
                )
                ratio = (
                    r.session_accuracy / r.naive_session_accuracy
                    if r.naive_session_accuracy
                    else float("nan")
                )
                print(
                    f"| {strategy} | {size} | {hold} | {r.calls} "
                    f"| {r.session_accuracy:.3f} | {r.channel_accuracy:.3f} "
                    f"| {r.identified_share:.3f} | {r.fallback_rate:.3f} | {r.utilisation:.2f} "
                    f"| {r.calibration_error:.3f} | {r.naive_session_accuracy:.3f} | {ratio:.2f} |",
                    flush=True,
                )
    if skipped:
        print(f"\n{skipped} configurations skipped: budget of {args.budget:.0f} s reached")
    print(f"\nelapsed {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()

"""Before/after check of a refactor: the benchmarks' outputs from two revisions, compared byte for byte.

Each revision is exported (``git archive``) into a temporary folder, so
benchmarks that write into the tree (``proxy_calibration.py`` writes
``benchmarks/results`` and ``docs``) touch neither checkout. Checks, each run
on both revisions with the same Python:

* ``rate_savings``: ``benchmarks/rate_savings.py --data DATA --limit N --resamples R``
  (every file it writes, and its stdout);
* ``proxy_calibration``: ``benchmarks/proxy_calibration.py --report-only`` (the
  result JSON and table, the docs page and plot, stdout);
* ``footers``: the markdown of ``pcmp.py`` and ``related_features.py`` rendered
  from the *before* revision's result files (only the code differs).

Writes a markdown note (default ``benchmarks/results/refactor_check.md``)
saying which outputs matched; exit code 1 when any differs::

    python benchmarks/refactor_check.py --before 5fcc894 --after HEAD --data /root/sursmr-data/heldout-v1
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOOTER_SCRIPT = """
import json, sys
from pathlib import Path
results = Path(sys.argv[1])
import benchmarks.pcmp as pcmp
import benchmarks.related_features as related
for module, name in ((pcmp, "pcmp"), (related, "related_features")):
    sys.stdout.write(module.markdown(json.loads((results / f"{name}.json").read_text())))
"""


def export(rev: str, folder: Path) -> str:
    """The tree of ``rev`` under ``folder``; returns the full commit id."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", rev], check=True, capture_output=True, text=True
    ).stdout.strip()
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return commit


def run(tree: Path, args: list[str], stdout: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with stdout.open("wb") as out:
        subprocess.run([sys.executable, *args], cwd=tree, env=env, stdout=out, stderr=subprocess.DEVNULL, check=True)


def side(tree: Path, out: Path, data: Path, limit: int, resamples: int, results_for_footers: Path) -> None:
    """Run every check on one exported tree; outputs under ``out/<check>/``."""
    rs = out / "rate_savings"
    rs.mkdir(parents=True)
    rate_args = ["benchmarks/rate_savings.py", "--data", str(data), "--limit", str(limit)]
    run(tree, [*rate_args, "--resamples", str(resamples), "--out", str(rs)], rs / "stdout.txt")
    pc = out / "proxy_calibration"
    pc.mkdir()
    run(tree, ["benchmarks/proxy_calibration.py", "--report-only"], pc / "stdout.txt")
    for source in (
        tree / "benchmarks/results/proxy_calibration.json",
        tree / "benchmarks/results/proxy_calibration.md",
        tree / "docs/proxy_calibration.md",
        tree / "docs/proxy_calibration.png",
    ):
        (pc / f"{source.parent.name}_{source.name}").write_bytes(source.read_bytes())
    ft = out / "footers"
    ft.mkdir()
    run(tree, ["-c", FOOTER_SCRIPT, str(results_for_footers)], ft / "markdown.txt")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def compare(before: Path, after: Path) -> list[tuple[str, str, str | None, str | None]]:
    """(check, file, before sha, after sha) for every file on either side."""
    rows = []
    for check in sorted(p.name for p in before.iterdir()):
        names = sorted({p.name for p in (before / check).iterdir()} | {p.name for p in (after / check).iterdir()})
        for name in names:
            b, a = before / check / name, after / check / name
            rows.append((check, name, sha(b) if b.exists() else None, sha(a) if a.exists() else None))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision before the refactor")
    parser.add_argument("--after", default="HEAD", help="git revision after it [default: HEAD]")
    parser.add_argument("--data", required=True, type=Path, help="a built dataset with val and test splits")
    parser.add_argument("--limit", type=int, default=30, help="rate_savings: first N items of each split")
    parser.add_argument("--resamples", type=int, default=200, help="rate_savings: bootstrap resamples")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "refactor_check.md")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sursmr-refactor-check-") as temp:
        work = Path(temp)
        commits = {}
        for name, rev in (("before", args.before), ("after", args.after)):
            commits[name] = export(rev, work / "tree" / name)
        footer_results = work / "tree" / "before" / "benchmarks" / "results"
        for name in ("before", "after"):
            print(f"{name}: {commits[name][:10]}", file=sys.stderr)
            side(work / "tree" / name, work / "out" / name, args.data, args.limit, args.resamples, footer_results)
        rows = compare(work / "out" / "before", work / "out" / "after")
    same = all(b is not None and b == a for _, _, b, a in rows)
    rate = f"--data {args.data} --limit {args.limit} --resamples {args.resamples}"
    lines = [
        "# Refactor check: benchmark outputs before and after",
        "",
        "<!-- generated by benchmarks/refactor_check.py; do not edit -->",
        "",
        f"Before: `{commits['before'][:10]}`; after: `{commits['after'][:10]}`. Each revision exported with "
        f"`git archive` and run with the same Python on {platform.machine()} ({platform.python_version()}), "
        f"{os.cpu_count()} cores, in {time.perf_counter() - start:.0f} s. Checks: `rate_savings.py {rate}`; "
        "`proxy_calibration.py --report-only`; the markdown of `pcmp.py` and `related_features.py` rendered from "
        "the before revision's result files.",
        "",
        f"**{'Every output is byte-identical.' if same else 'Some outputs differ (below).'}**",
        "",
        "| check | file | SHA-256 before | SHA-256 after | same |",
        "|---|---|---|---|---|",
        *(
            f"| {check} | `{name}` | {b or 'missing'} | {a or 'missing'} | {'yes' if b and b == a else 'NO'} |"
            for check, name, b, a in rows
        ),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    sys.stdout.write("\n".join(lines))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

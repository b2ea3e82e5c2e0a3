"""Copy the latest generated result tables (``results/*.md``) into ``benchmarks/README.md``.

The tables between the markers are never typed by hand: run the benchmarks,
then this script.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- results:begin (written by benchmarks/update_readme.py) -->"
END = "<!-- results:end -->"
ORDER = ["accuracy", "rate_savings", "speed", "codec_speed", "model_complexity"]


def main() -> int:
    readme = HERE / "README.md"
    text = readme.read_text(encoding="utf-8")
    parts = []
    for name in ORDER:
        path = HERE / "results" / f"{name}.md"
        if path.is_file():
            body = path.read_text(encoding="utf-8").strip()
            parts.append(body.replace("\n# ", "\n### ").replace("# ", "### ", 1))
    block = BEGIN + "\n\n" + "\n\n".join(parts) + "\n\n" + END
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    readme.write_text(head + block + tail, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Copy the latest generated result tables (``results/*.md``) into ``benchmarks/README.md``.

Also copies ``results/rate_savings_headline.md``, ``results/batch_headline.md``,
``results/codec_auto_headline.md``, ``results/oneshot_headline.md`` (and the dataset and model
blocks) between their markers in the main ``README.md``. The tables between the markers are never
typed by hand: run the benchmarks, then this script.
"""

from __future__ import annotations

from pathlib import Path

from sursmr.predictor import DEFAULT_MODEL

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- results:begin (written by benchmarks/update_readme.py) -->"
END = "<!-- results:end -->"
ORDER = [
    "accuracy",
    "rate_savings",
    "speed",
    "speed_phone",
    "tile_sampling",
    "codec_auto",
    "oneshot",
    "codec_speed",
    "model_complexity",
    "batch",
    "pcmp",
    "related_features",
]
HEADLINE_BEGIN = "<!-- headline:begin (written by benchmarks/update_readme.py) -->"
HEADLINE_END = "<!-- headline:end -->"
DATASET_BEGIN = "<!-- dataset:begin (written by benchmarks/update_readme.py) -->"
DATASET_END = "<!-- dataset:end -->"
MODEL_BEGIN = "<!-- model:begin (written by benchmarks/update_readme.py) -->"
MODEL_END = "<!-- model:end -->"
MODEL_FULL_BEGIN = "<!-- model-full-test:begin (written by benchmarks/update_readme.py) -->"
MODEL_FULL_END = "<!-- model-full-test:end -->"
SEARCH_BEGIN = "<!-- search:begin (written by benchmarks/update_readme.py) -->"
SEARCH_END = "<!-- search:end -->"
BATCH_BEGIN = "<!-- batch:begin (written by benchmarks/update_readme.py) -->"
BATCH_END = "<!-- batch:end -->"
CODEC_AUTO_BEGIN = "<!-- codec-auto:begin (written by benchmarks/update_readme.py) -->"
CODEC_AUTO_END = "<!-- codec-auto:end -->"


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with everything between the ``begin`` and ``end`` markers replaced by ``body``."""
    head, found, rest = text.partition(begin)
    if not found:
        return text
    _, _, tail = rest.partition(end)
    return head + begin + "\n\n" + body.strip() + "\n\n" + end + tail


def main() -> int:
    readme = HERE / "README.md"
    text = readme.read_text(encoding="utf-8")
    parts = []
    for name in ORDER:
        path = HERE / "results" / f"{name}.md"
        if path.is_file():
            body = path.read_text(encoding="utf-8").strip()
            parts.append(body.replace("\n# ", "\n### ").replace("# ", "### ", 1))
    readme.write_text(replace_between(text, BEGIN, END, "\n\n".join(parts)), encoding="utf-8")
    main_readme = HERE.parent / "README.md"
    for name, begin, end in (
        ("rate_savings_headline", HEADLINE_BEGIN, HEADLINE_END),
        ("batch_headline", BATCH_BEGIN, BATCH_END),
        ("codec_auto_headline", CODEC_AUTO_BEGIN, CODEC_AUTO_END),
        ("oneshot_headline", SEARCH_BEGIN, SEARCH_END),
        ("dataset_stats", DATASET_BEGIN, DATASET_END),
        (f"model_{DEFAULT_MODEL}", MODEL_BEGIN, MODEL_END),
        (f"model_{DEFAULT_MODEL}-v2-test", MODEL_FULL_BEGIN, MODEL_FULL_END),
    ):
        headline = HERE / "results" / f"{name}.md"
        if headline.is_file() and main_readme.is_file():
            text = main_readme.read_text(encoding="utf-8")
            main_readme.write_text(
                replace_between(text, begin, end, headline.read_text(encoding="utf-8")), encoding="utf-8"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

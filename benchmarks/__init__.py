"""Benchmarks: accuracy, rate savings and speed; each script writes JSON and Markdown to benchmarks/results/."""

"""The shared base layer of sursmr: errors, image loading, the tool runner, registries and level axes.

It imports nothing else of ours. ``codec_adapters`` builds on it alone; the
``sursmr`` controller and predictor build on ``codec_adapters``; ``training``
builds on both; ``benchmarks`` on everything. ``tests/test_layering.py``
fails when an import breaks these rules.
"""

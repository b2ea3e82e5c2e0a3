"""Training side of sursmr: label pipeline (IQA ensemble, machine zoo), datasets, train loop.

Labels made here are *proxies*: pseudo-SUR from full-reference IQA metrics and
a simulated observer population, SMR from our own zoo of vision models. Code,
manifests and reports name them so.
"""

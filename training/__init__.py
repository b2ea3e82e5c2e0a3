"""Training side of sursmr: label pipeline (IQA ensemble, machine zoo), datasets, train loop.

Labels made here are *proxies*: pseudo-SUR from full-reference IQA metrics and
a simulated observer population, SMR from our own zoo of vision models. Code,
manifests and reports name them so.
"""

from pathlib import Path as _Path

from sursmr.model_sources import MODEL_SOURCES, ModelSource, OpenedModel


def _is_checkpoint(spec: str) -> bool:
    path = _Path(spec)
    return path.suffix == ".pt" or path.is_dir()


def _open_checkpoint(spec: str) -> OpenedModel:
    # torch loads here, when a checkpoint is actually opened
    from sursmr.models.config import NetConfig
    from sursmr.models.weights import ModelCard
    from training.train import load_checkpoint

    payload = load_checkpoint(spec)
    config = NetConfig.from_dict(payload["config"])
    card = ModelCard(name=config.name, config=config)
    return OpenedModel(card, lambda network: network.load_state_dict(payload["model"]))


# `sursmr.predictor.load` opens training runs and checkpoints once any training module is imported
MODEL_SOURCES.register(ModelSource("checkpoint", claims=_is_checkpoint, open=_open_checkpoint))

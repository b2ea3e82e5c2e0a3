"""Label one level sweep of one image: raw metric scores, Eq. 3 pseudo-SUR, JND proxy, SMR.

Every label made here is a *proxy*: pseudo-SUR comes from an ensemble of
full-reference IQA metrics normalised per image (paper Eq. 3), the absolute
SUR proxy from JND-calibrated metrics, and SMR from our own zoo of vision
models. Real SUR comes only from subjective datasets (see ``loaders``).

The labellers are gathered in a :class:`LabelPipeline`; a *factory* (a small
picklable object) builds it inside each worker process, once per process, so
models are loaded once and jobs stay cheap to ship. Tests inject their own
factory of fake labellers.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sursmr_core.errors import LabellerUnavailableError
from sursmr_core.imaging import RGBImage

Eq3Fn = Callable[[Mapping[str, Sequence[float]], Mapping[str, bool]], Any]
SmrFn = Callable[[Mapping[str, "bool | None"]], "float | None"]
# (reference, decoded images in level order, raw metric scores) -> SUR proxy per level (None: undefined)
JndSurFn = Callable[[RGBImage, Sequence[RGBImage], Mapping[str, Sequence[float]]], Sequence["float | None"]]


class MetricLike(Protocol):
    name: str
    lower_is_better: bool
    version: str

    def score(self, reference: RGBImage, distorted: RGBImage) -> float: ...


class MachineLike(Protocol):
    name: str
    task: str
    version: str
    rule: str
    applicability: str

    def analyse(self, rgb: RGBImage) -> Any: ...

    def judge(self, original: Any, compressed: Any) -> bool | None: ...


@dataclass
class LabelPipeline:
    """The labellers used for one build, ready to run (models loaded)."""

    metrics: Mapping[str, MetricLike]
    machines: Mapping[str, MachineLike]
    eq3: Eq3Fn
    smr: SmrFn
    jnd_sur: JndSurFn | None = None
    jnd_sur_name: str | None = None


@dataclass
class SweepLabels:
    """Labels of one image's level sweep; every list has one entry per level, in the sweep's order.

    ``scores``: raw metric values (metric units, see ``lower_is_better``).
    ``pseudo_sur_eq3``: paper Eq. 3 over this level set, in [0, 1].
    ``sur_jnd_proxy``: absolute JND-calibrated SUR proxy in [0, 1], or ``None`` when not computed.
    ``verdicts``: per machine, True (satisfied) / False / None (its task does not apply to the original).
    ``smr``: share of satisfied machines among the applicable ones, in [0, 1]; None with fewer than K applicable.
    """

    scores: dict[str, list[float]]
    lower_is_better: dict[str, bool]
    pseudo_sur_eq3: list[float]
    sur_jnd_proxy: list[float | None] | None
    verdicts: dict[str, list[bool | None]]
    smr: list[float | None]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores,
            "lower_is_better": self.lower_is_better,
            "pseudo_sur_eq3": self.pseudo_sur_eq3,
            "sur_jnd_proxy": self.sur_jnd_proxy,
            "machine_verdicts": self.verdicts,
            "smr": self.smr,
        }


def _finite(value: float, what: str) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise LabellerUnavailableError(f"{what} returned a non-finite value ({number})")
    return number


def label_sweep(reference: RGBImage, decoded: Sequence[RGBImage], pipeline: LabelPipeline) -> SweepLabels:
    """Label every decoded image of one sweep against ``reference`` (uint8 (H, W, 3) each)."""
    import time

    seconds: dict[str, float] = {}
    scores: dict[str, list[float]] = {}
    for name, metric in pipeline.metrics.items():
        start = time.perf_counter()
        scores[name] = [_finite(metric.score(reference, image), f"metric {name}") for image in decoded]
        seconds[f"metric:{name}"] = time.perf_counter() - start
    directions = {name: bool(metric.lower_is_better) for name, metric in pipeline.metrics.items()}
    start = time.perf_counter()
    eq3 = [float(v) for v in np.asarray(pipeline.eq3(scores, directions), dtype=np.float64).reshape(-1)]
    if len(eq3) != len(decoded):
        raise LabellerUnavailableError(f"Eq. 3 returned {len(eq3)} values for {len(decoded)} levels")
    jnd: list[float | None] | None = None
    if pipeline.jnd_sur is not None:
        jnd = [None if v is None else float(v) for v in pipeline.jnd_sur(reference, decoded, scores)]
    seconds["eq3+jnd"] = time.perf_counter() - start
    verdicts: dict[str, list[bool | None]] = {}
    for name, machine in pipeline.machines.items():
        start = time.perf_counter()
        original = machine.analyse(reference)
        applies = getattr(machine, "applies", None)
        if applies is not None and not applies(original):
            # the task does not apply to the original, so judge() is None at every level:
            # skip running the machine on the decoded images (most of OCR's and the face machines' cost)
            verdicts[name] = [None] * len(decoded)
        else:
            verdicts[name] = [machine.judge(original, machine.analyse(image)) for image in decoded]
        seconds[f"machine:{name}"] = time.perf_counter() - start
    smr = [pipeline.smr({name: verdicts[name][i] for name in verdicts}) for i in range(len(decoded))]
    return SweepLabels(scores, directions, eq3, jnd, verdicts, smr, seconds)


# --- the default factory: labellers from the registries -------------------------


def _labels_module(name: str) -> Any:
    try:
        return importlib.import_module(f"training.labels.{name}")
    except ImportError as exc:
        raise LabellerUnavailableError(f"training.labels.{name} cannot be imported: {exc}") from None


class _JndProxyOverSweep:
    """Adapts :mod:`training.labels.jnd_proxy` to a sweep: reuse scores already computed, score the rest.

    Only the JND scales usable at this image size (and runnable here) are
    used; when none is, every level gets ``None``. ``config`` is the named
    calibration (``module.jnd_proxy(name)``).
    """

    def __init__(self, module: Any, config: Any) -> None:
        self.module = module
        self.config = config

    def __call__(
        self, reference: RGBImage, decoded: Sequence[RGBImage], scores: Mapping[str, Sequence[float]]
    ) -> list[float | None]:
        from training.metrics import METRICS

        scales = self.module.usable_scales(int(reference.shape[0]), int(reference.shape[1]), self.config)
        if not scales:
            return [None] * len(decoded)
        values: dict[str, Sequence[float]] = {}
        for scale in scales:
            if scale.metric in scores:
                values[scale.metric] = scores[scale.metric]
            else:
                metric = METRICS.get(scale.metric)()
                values[scale.metric] = [float(metric.score(reference, image)) for image in decoded]
        return [float(v) for v in np.asarray(self.module.jnd_sur(values, self.config), dtype=np.float64).reshape(-1)]


def _jnd_adapter(module: Any, name: str) -> tuple[JndSurFn, str] | None:
    """The sweep entry point of the JND proxy calibrated as ``name``; ``None`` when the module lacks what we use."""
    if all(callable(getattr(module, f, None)) for f in ("jnd_sur", "usable_scales", "jnd_proxy")):
        return _JndProxyOverSweep(module, module.jnd_proxy(name)), f"{module.__name__}.jnd_sur[{name}]"
    return None


@dataclass(frozen=True)
class RegistryLabellers:
    """Factory of the default :class:`LabelPipeline` from ``METRICS`` / ``MACHINES``.

    ``metrics`` / ``machines``: names to use, or ``None`` for every available
    one. A *named* labeller that cannot run here is an error; with ``None``,
    unavailable ones are skipped and listed (with reasons) in :meth:`describe`.
    """

    metrics: tuple[str, ...] | None = None
    machines: tuple[str, ...] | None = None
    jnd_proxy: bool = True
    min_applicable: int = 4  # K of training.labels.smr.smr_from_verdicts
    jnd_proxy_name: str = "konjnd"  # a calibration registered in training.labels.jnd_proxy.JND_PROXIES

    def _choose(self, registry: Any, names: tuple[str, ...] | None, kind: str) -> tuple[list[Any], dict[str, str]]:
        chosen: list[Any] = []
        skipped: dict[str, str] = {}
        for name in names if names is not None else registry.names():
            cls = registry.get(name)
            status = cls.availability()
            if status.available:
                chosen.append(cls)
            elif names is not None:
                raise LabellerUnavailableError(f"{kind} {name!r} is not available here: {status.reason}")
            else:
                skipped[name] = str(status.reason)
        return chosen, skipped

    def describe(self) -> dict[str, Any]:
        """Labellers this factory will use (name, version, direction/task, rule) and the ones skipped."""
        from training.machines import MACHINES
        from training.metrics import METRICS

        metrics, skipped_metrics = self._choose(METRICS, self.metrics, "metric")
        machines, skipped_machines = self._choose(MACHINES, self.machines, "machine")
        if not metrics:
            raise LabellerUnavailableError("no IQA metric is available here, so Eq. 3 pseudo-SUR cannot be made")
        jnd: str | None = None
        jnd_reason: str | None = None
        if self.jnd_proxy:
            try:
                adapter = _jnd_adapter(_labels_module("jnd_proxy"), self.jnd_proxy_name)
                jnd = adapter[1] if adapter else None
                jnd_reason = None if adapter else "training.labels.jnd_proxy offers no jnd_sur/usable_scales/jnd_proxy"
            except LabellerUnavailableError as exc:
                jnd_reason = str(exc)
        return {
            "proxy_labels": True,
            "metrics": [
                {
                    "name": c.name,
                    "version": c.version,
                    "lower_is_better": c.lower_is_better,
                    "jnd_unit": c.jnd_unit,
                    **({"encoder": c.encoder_name()} if c.encoder_name() else {}),
                }
                for c in metrics
            ],
            "machines": [
                {"name": c.name, "version": c.version, "task": c.task, "rule": c.rule, "applicability": c.applicability}
                for c in machines
            ],
            "skipped": {
                **{f"metric:{k}": v for k, v in skipped_metrics.items()},
                **{f"machine:{k}": v for k, v in skipped_machines.items()},
            },
            "pseudo_sur": "training.labels.pseudo_sur.eq3_pseudo_sur (paper Eq. 3)",
            "smr": f"training.labels.smr.smr_from_verdicts (min_applicable={self.min_applicable})",
            "jnd_proxy": jnd,
            "jnd_proxy_skipped": jnd_reason,
        }

    def __call__(self) -> LabelPipeline:
        from training.machines import MACHINES
        from training.metrics import METRICS

        metric_classes, _ = self._choose(METRICS, self.metrics, "metric")
        machine_classes, _ = self._choose(MACHINES, self.machines, "machine")
        if not metric_classes:
            raise LabellerUnavailableError("no IQA metric is available here, so Eq. 3 pseudo-SUR cannot be made")
        pseudo_sur = _labels_module("pseudo_sur")
        smr = _labels_module("smr")
        jnd: tuple[JndSurFn, str] | None = None
        if self.jnd_proxy:
            try:
                jnd = _jnd_adapter(_labels_module("jnd_proxy"), self.jnd_proxy_name)
            except LabellerUnavailableError:
                jnd = None
        return LabelPipeline(
            metrics={c.name: c() for c in metric_classes},
            machines={c.name: c() for c in machine_classes},
            eq3=pseudo_sur.eq3_pseudo_sur,
            smr=functools.partial(smr.smr_from_verdicts, min_applicable=self.min_applicable),
            jnd_sur=jnd[0] if jnd else None,
            jnd_sur_name=jnd[1] if jnd else None,
        )


class PipelineFactory(Protocol):
    """Anything picklable and hashable that builds a pipeline and can describe it."""

    def __call__(self) -> LabelPipeline: ...

    def describe(self) -> dict[str, Any]: ...


_PIPELINES: dict[Any, LabelPipeline] = {}


def pipeline_for(factory: PipelineFactory) -> LabelPipeline:
    """The pipeline of ``factory``, built once per process (models stay loaded between jobs)."""
    pipeline = _PIPELINES.get(factory)
    if pipeline is None:
        pipeline = factory()
        _PIPELINES[factory] = pipeline
    return pipeline

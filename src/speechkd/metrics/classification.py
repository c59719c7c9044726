"""Classification accuracy, as the SLU papers report it: the share of utterances whose whole label is right
(for FSC-style intents, action, object and location all correct; clovaai/textual-kd-slu counts
`pred == label` over the test set)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence


@dataclass(frozen=True)
class ClassCounts:
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0


@dataclass(frozen=True)
class AccuracyReport:
    correct: int
    total: int
    per_class: dict[Hashable, ClassCounts] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Percent; 0 for an empty set."""
        return 100.0 * self.correct / self.total if self.total else 0.0


def accuracy(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> AccuracyReport:
    """Accuracy plus per-class (keyed by the gold label) correct/total counts."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    correct: dict[Hashable, int] = {}
    total: dict[Hashable, int] = {}
    for p, y in zip(predictions, labels):
        total[y] = total.get(y, 0) + 1
        correct[y] = correct.get(y, 0) + (p == y)
    per_class = {y: ClassCounts(correct[y], total[y]) for y in total}
    return AccuracyReport(sum(correct.values()), len(labels), per_class)

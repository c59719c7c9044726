"""The ST training criteria: the registry (name -> class, CRITERIA), the config section, the base class, the
label-smoothed NLL (nll.py) and the KD criteria (kd.py). A criterion computes the training loss of one batch; the task
(st/task.py) owns it, the data, and any frozen helper model (the NMT/AST expert, a cascade's ASR model).

Protocol (what st/task.py calls):
    crit = CRITERIA[name](cfg, ctx)             # cfg: CriterionConfig, ctx: CriterionContext
    loss_sum, sample_size, logs = crit(model, batch)   # sums, fairseq convention; sample_size = gold tokens
    crit.on_update(num_updates)                 # after every optimizer update (the fork's β update lives here)
    crit.valid_loss(model, batch) -> (nll_sum, ntokens)   # validation: NLL on gold, no label smoothing
    crit.state_dict() / crit.load_state_dict(d)        # plain floats/ints only (weights_only checkpoints)

Class attributes tell the task what to load: `needs_expert` (ctx.expert, and the batches carry the expert's
source ids `expert_source`), `needs_asr` (ctx.asr: a frozen ASR model for on-the-fly transcripts). Frozen models
are held by the task, never by the student (so they never enter its optimiser or checkpoints), and a criterion
must not be an nn.Module for the same reason.

Modules: config.py (CriterionConfig, KDConfig: no criterion code), base.py (CriterionContext, Criterion, CRITERIA,
register), nll.py (label_smoothed_nll), kd.py (word-KD, ImitKD-optimal/-full, mixer, AST-expert, cascade). Each
criterion module registers its classes with @register(name) and imports base.py only; this file imports them all
so that the registry is complete.
"""

from __future__ import annotations

from ...errors import InputError
from . import nll  # noqa: F401  (registers label_smoothed_nll first, then the KD criteria: the registry's order)
from . import kd  # noqa: F401,I001
from .base import CRITERIA, Criterion, CriterionContext, LossOut, register
from .config import CriterionConfig, KDConfig
from .nll import LabelSmoothedNll

__all__ = ["CRITERIA", "Criterion", "CriterionConfig", "CriterionContext", "KDConfig", "LabelSmoothedNll", "LossOut",
           "criterion_class", "register"]


def criterion_class(name: str) -> type[Criterion]:
    if name not in CRITERIA:
        raise InputError(f"criterion.name: unknown criterion {name!r} (available: {', '.join(sorted(CRITERIA))})")
    return CRITERIA[name]

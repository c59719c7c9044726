"""speechkd: knowledge distillation for speech (two-stage textual KD for SLU; ImitKD for speech translation)."""

__version__ = "0.1.0"

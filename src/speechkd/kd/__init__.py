"""Knowledge-distillation losses, β schedules and roll-in, as pure tensor functions shared by both pipelines.

- sequence_losses: fairseq's label-smoothed NLL, word-level KD, ImitKD-optimal/-full, the mixer variants and the
  fork's coded bugs behind named flags (ImitKD for AST, HubReb/imitkd_ast criterions).
- beta: the β schedules of the fork's trainer.py and of the original ImitKD code.
- rollin: per-sentence mixing of gold and student prefixes (the fork's generate_imit_batch).
- logit_kd: SLU FT-KD on intent logits (clovaai/textual-kd-slu finetuning.py).
- representation_kd: SLU PT-KD distance between the speech and text [CLS] vectors (script not released).

Everything takes tensors (log-probs, logits, targets, masks), never models, and returns sums where fairseq sums.
"""

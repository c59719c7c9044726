"""The stage entry points, one module per command: `speechkd slu-finetune` runs stages/slu_finetune.py.

Each module defines the stage's Config (its JSON config, see config.py) and run(cfg); the work itself is done by
the core (data, features, models, kd, train, decode, metrics, tables) and by the pipeline helpers in slu/, st/ and
synth/. No module outside this folder is a stage.
"""

"""Imported once by `speechkd pipeline`'s fork server (multiprocessing set_forkserver_preload): torch and every
stage, so that each run, a fork of that server, starts without importing them again."""
import gc

from .pipeline import _preload

_preload()
gc.freeze()  # the imported objects: the children's collections skip them and leave their pages shared

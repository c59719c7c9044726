"""The one exception type for bad input: the CLI prints its message (no traceback) and exits with code 2."""


class InputError(Exception):
    """Bad user input: a config, a manifest, an audio file, a checkpoint. The message names the file,
    line or field and says what was expected."""

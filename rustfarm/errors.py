"""Errors the `farm` command reports as one clear message, never a traceback."""


class FarmError(Exception):
    """Something the user can act on; the message says what and where."""


class ImagesError(FarmError):
    """An image command's failure the user can act on: the message says which image."""

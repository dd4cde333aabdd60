"""The one exception family the images commands report as a message, not a traceback."""

from rustfarm.errors import FarmError


class ImagesError(FarmError):
    """Something the user can act on: the message says what and which image."""

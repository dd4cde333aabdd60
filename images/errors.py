"""The one exception family the images commands report as a message, not a traceback."""


class ImagesError(Exception):
    """Something the user can act on: the message says what and which image."""

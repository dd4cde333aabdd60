"""The farm's Docker worker images: recipes, tags, builds, pushes and listings.

The `farm images` command is registered by :func:`rustfarm.images.cli.add_commands`.
"""


def current_reference(name: str) -> str:
    """``rustfarm/<triple>:<toolchain>-<content-tag>``: the image farm.yaml should pin
    for a target (``<triple>@<toolchain>`` for another toolchain than the default)."""
    from .recipes import current_reference as reference

    return reference(name)


__all__ = ["current_reference"]

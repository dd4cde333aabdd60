"""The farm's Docker worker images: recipes, tags, builds, pushes and listings.

The `farm images` command is registered by :func:`rustfarm.images.cli.add_commands`.
"""


def current_reference(triple: str, docker_host: str | None = None) -> str:
    """``rustfarm/<triple>:<content-tag>``: the image farm.yaml should pin for a target."""
    from .recipes import current_reference as reference

    return reference(triple, docker_host)


__all__ = ["current_reference"]

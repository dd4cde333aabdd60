"""What `farm up` does about the worker images farm.yaml pins: says which a pool's
first engine lacks, pulls them from the pool's ``image_registry`` when it has one,
and builds the others the recipes make exactly."""

from __future__ import annotations

from rustfarm.farmfile import Farm
from rustfarm.progress import say

from .docker_probe import missing_images, report_images_elsewhere


def build_missing_images(farm: Farm, build: bool = True) -> bool:
    """List the pinned images the pools' engines lack; pull or build them."""
    from rustfarm.errors import ImagesError
    from rustfarm.plumbing import connect

    report_images_elsewhere(farm)
    missing = missing_images(farm)
    if not missing:
        return True
    say(f"{len(missing)} pinned worker images are not on their pool's engine yet; their "
        "builds fail until `farm images build` makes them (or a pool's image_registry "
        "has them):")
    for pool, key, image in missing:
        say(f"  {key.replace('@', ' with Rust ')}: {image} (pool {pool})")
    if not build:
        return True
    by_engine: dict[tuple, dict[str, str]] = {}
    for pool_name, key, image in missing:
        pool = farm.pools[pool_name]
        engine = pool.engines[0]
        # One pass per engine and registry: pools that share them share the images.
        by_engine.setdefault((engine.url, engine.tls, pool.image_registry), {})[key] = image
    try:
        for (url, tls, registry), images in by_engine.items():
            client = connect(url, tls)
            try:
                if registry:
                    images = _pull(client, registry, images)
                if images:
                    _build(client, images)
            finally:
                client.close()
    except ImagesError as err:
        say(f"getting the images failed: {err}")
        return False
    say("every pinned worker image is on its pool's engine")
    return True


def _pull(client, registry: str, images: dict[str, str]) -> dict[str, str]:
    """Pull each image from the pool's registry; those it does not hold, left to build."""
    from rustfarm.progress import Progress
    from rustfarm.images.registry import RegistryError, pull_image

    left = {}
    for key, image in images.items():
        try:
            pull_image(client, registry, image, Progress())
        except RegistryError as err:
            say(f"{image} could not be pulled from {registry} ({err}); building it")
            left[key] = image
    return left


def _build(client, images: dict[str, str]) -> None:
    """Build those of ``images`` the recipes make exactly; name the others."""
    from rustfarm.errors import ImagesError
    from rustfarm.images.build import build_images
    from rustfarm.images.recipes import current_catalog

    catalog = current_catalog()

    def made_now(key: str) -> str | None:
        try:
            return catalog.reference(key)
        except ImagesError:     # a target the recipes do not know
            return None

    buildable = [key for key, image in images.items() if image == made_now(key)]
    for key, image in images.items():
        if key not in buildable:
            triple, _, toolchain = key.partition("@")
            say(f"{triple}: {image} is not what the recipes make now; build and pin it with "
                f"`farm images build --target {triple} --toolchain {toolchain}` and "
                "`farm images pin`")
    if not buildable:
        return
    say(f"building {len(buildable)} missing worker images (the first time about a minute "
        "per target, which builds its std; the farm already answers, but these targets' "
        "builds fail until it is done)")
    build_images(client, buildable, catalog=catalog)

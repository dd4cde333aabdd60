"""What `farm up` does about the worker images farm.yaml pins: says which the engine
lacks, and builds those the recipes make exactly."""

from __future__ import annotations

from rustfarm.farmfile import Farm
from rustfarm.progress import say

from .docker_probe import missing_images, report_images_elsewhere


def build_missing_images(farm: Farm, build: bool = True) -> bool:
    """List the pinned images the engine lacks; build those the recipes make exactly."""
    from rustfarm.images.build import build_images
    from rustfarm.plumbing import connect
    from rustfarm.errors import ImagesError
    from rustfarm.images.recipes import current_catalog

    report_images_elsewhere(farm)
    missing = missing_images(farm)
    if not missing:
        return True
    say(f"{len(missing)} pinned worker images are not built yet; their builds fail until "
        "`farm images build` makes them:")
    for key, image in missing:
        say(f"  {key.replace('@', ' with Rust ')}: {image}")
    if not build:
        return True
    try:
        # The first docker pool's first engine, where missing_images looked (with its TLS).
        engine = next(p.engines[0] for p in farm.pools.values() if p.kind == "docker")
        client = connect(engine.url, engine.tls)
        try:
            catalog = current_catalog()

            def made_now(key: str) -> str | None:
                try:
                    return catalog.reference(key)
                except ImagesError:     # a target the recipes do not know
                    return None

            buildable = [key for key, image in missing if image == made_now(key)]
            for key, image in missing:
                if key not in buildable:
                    triple, _, toolchain = key.partition("@")
                    say(f"{triple}: {image} is not what the recipes make now; build and pin "
                        f"it with `farm images build --target {triple} --toolchain "
                        f"{toolchain}` and `farm images pin`")
            if not buildable:
                return True
            say(f"building {len(buildable)} missing worker images (the first time about a "
                "minute per target, which builds its std; the farm already answers, but "
                "these targets' builds fail until it is done)")
            build_images(client, buildable, catalog=catalog)
        finally:
            client.close()
    except ImagesError as err:
        say(f"building the images failed: {err}")
        return False
    say("every pinned worker image is built")
    return True

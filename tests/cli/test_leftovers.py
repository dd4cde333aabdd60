"""Which volumes `farm up` removes as no build's any more: a project's or a target's
compile cache of an image farm.yaml no longer pins, named as now or as before images
were part of the name; never a current one, another project's or another farm's."""

from __future__ import annotations

from rustfarm.cli.leftovers import current_cache_volumes, is_stale, unimaged_cache_volume_name
from rustfarm.farmfile import load
from rustfarm.workers.docker_volumes import cache_volume_name, compile_cache_volume_name

TARGET = "mipsel-unknown-linux-musl"
IMAGE = f"rustfarm/{TARGET}:1.96-0123456789ab"
OLD = f"rustfarm/{TARGET}:1.96-ba9876543210"


def farm(tmp_path, masters: str = ""):
    (tmp_path / "farm.yaml").write_text(f"""\
farm: {{name: own}}
{masters}workers:
  dk: {{kind: docker, count: 1}}
targets:
  {TARGET}: {{pool: dk, image: "{IMAGE}"}}
projects:
  alpha: {{source: {tmp_path}}}
  alpha-beta: {{source: {tmp_path}}}
""")
    return load(tmp_path / "farm.yaml")


def stale(loaded, volume: str) -> bool:
    return is_stale(volume, *current_cache_volumes(loaded))


def test_the_volumes_of_images_no_longer_pinned_are_stale(tmp_path):
    loaded = farm(tmp_path)
    for project in ("alpha", "alpha-beta"):
        assert not stale(loaded, cache_volume_name("own", project, TARGET, IMAGE))
        assert stale(loaded, cache_volume_name("own", project, TARGET, OLD))
        assert stale(loaded, unimaged_cache_volume_name("own", project, TARGET))
    assert not stale(loaded, compile_cache_volume_name("own", IMAGE, TARGET))
    assert stale(loaded, compile_cache_volume_name("own", OLD, TARGET))
    # The compile caches of before, per toolchain.
    assert stale(loaded, "rustfarm-own-crates-1.96-mipsel-unknown-linux-musl-0123456789")


def test_other_farms_other_targets_and_other_volumes_are_not(tmp_path):
    loaded = farm(tmp_path)
    assert not stale(loaded, cache_volume_name("other", "alpha", TARGET, OLD))
    assert not stale(loaded, cache_volume_name("own", "alpha", "mips-unknown-linux-musl", OLD))
    assert not stale(loaded, cache_volume_name("own", "gamma", TARGET, OLD))
    assert not stale(loaded, f"rustfarm-own-alpha-{TARGET}-notes")
    assert not stale(loaded, "postgres-data")


def test_each_master_s_volumes_of_an_old_image_are_stale(tmp_path):
    loaded = farm(tmp_path, "db: {url: 'postgresql://farm@127.0.0.1:5433/farm'}\nmasters: 2\n"
                  "router: {url: 'ws://127.0.0.1:8399/ws', realm: farm}\n")
    names = [m.name for m in loaded.masters]
    for master in names:
        assert not stale(loaded, cache_volume_name("own", "alpha", TARGET, IMAGE, master))
        assert stale(loaded, cache_volume_name("own", "alpha", TARGET, OLD, master))

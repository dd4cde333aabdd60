"""Which volume, cache, artifact path and release a build uses comes from its builder
alone: not from a change, a scheduler's request, a force form or the source stamp.

Each build's properties are merged here by Buildbot's own code (the global
properties, the changes', the request's, the builder's, then Buildbot's from the
source stamp), with every property a change or a request could carry set to
another project's values, and a nightly build's source stamp, whose project is "".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from buildbot.process.build import Build
from buildbot.process.builder import Builder
from buildbot.process.properties import Properties

from rustfarm.master.configuration import buildmaster_config
from rustfarm.master.factories import ARCHIVE_NAME
from rustfarm.master.farm_file import CONFIG_ENV, load_farm
from rustfarm.names import (BUILDBOT_OWNED_PROPERTIES, COMPILE_JOB_PROPERTY,
                            PULL_REQUEST_PROPERTY, PULL_REQUEST_SOURCE)
from rustfarm.workers.docker_volumes import (COMPILE_CACHE_DIR, CacheVolume, cache_volume_name,
                                             pull_request_volume_name,
                                             compile_cache_mount, compile_cache_volume_name,
                                             upload_volume_name)

REPO = Path(__file__).resolve().parents[2]
TARGET = "mipsel-unknown-linux-gnu"
IMAGE = "rustfarm/mipsel-unknown-linux-gnu:1.96-abc"

FARM = f"""\
farm: {{name: own}}
compile: {{targets: [{TARGET}]}}
workers:
  dk: {{kind: docker, count: 2}}
targets:
  {TARGET}: {{pool: dk, image: "{IMAGE}"}}
projects:
  alpha: {{source: {REPO / 'examples' / 'hello'}}}
  beta: {{source: {REPO / 'examples' / 'hello'}}}
"""

# What a change (a webhook may carry any property), a scheduler or a force form could
# set: another farm's, another project's and another target's names, an upload's job.
HOSTILE = {"farm": "other-farm", "farm_project": "beta", "project": "beta",
           "target": "x86_64-unknown-linux-gnu", "image": "evil/image:1",
           "farm_upload_builder": True, COMPILE_JOB_PROPERTY: "someone-elses-job",
           "profile": "release --config build.rustc-wrapper='/x'", "crate_dir": "../..",
           "revision_label": "feedface", "farm_pull_request": 7}


@dataclass
class Change:
    properties: Properties


@dataclass
class SourceStamp:
    """A nightly build's source stamp: Buildbot's Nightly sets no project."""
    changes: list = field(default_factory=list)
    branch: str = "main"
    revision: str | None = None
    repository: str = "/elsewhere"
    codebase: str = ""
    project: str = ""


@dataclass
class Request:
    properties: Properties
    sources: dict

    def mergeSourceStampsWith(self, others):
        return list(self.sources.values())


class Master:
    def __init__(self, config):
        self.config = type("Config", (), {"properties": Properties(**config["properties"])
                                          if "properties" in config else Properties()})()


def build_properties(config: dict, builder_name: str, carried: dict) -> Properties:
    """A build's properties as Buildbot merges them, ``carried`` by its change and request."""
    [builder_config] = [b for b in config["builders"] if b.name == builder_name]
    builder = Builder(builder_name)
    builder.config, builder._builderid = builder_config, 1
    builder.master = Master(config)
    builder.project_name = builder.project_id = None
    change = Change(Properties(**carried))
    request = Request(Properties(**carried), {"": SourceStamp(changes=[change])})
    props = Properties()
    Build.setup_properties_known_before_build_starts(props, [request], builder)
    Build.setupBuildProperties(props, [request])
    props.setProperty("revision_label", "3b617a36869c", "Snapshot")   # the snapshot step's
    return props


def render(props: Properties, value):
    rendered = []
    props.render(value).addCallback(rendered.append)
    return rendered[0]


@pytest.fixture
def config(tmp_path, monkeypatch):
    (tmp_path / "farm.yaml").write_text(FARM)
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "farm.yaml"))
    return buildmaster_config(load_farm())


def package_step(config: dict, builder_name: str):
    [builder_config] = [b for b in config["builders"] if b.name == builder_name]
    return next(s for s in builder_config.factory.steps if s.step_class.__name__ == "Package")


def test_builder_properties_use_no_name_buildbot_sets_after_them(config):
    for builder_config in config["builders"]:
        assert not BUILDBOT_OWNED_PROPERTIES & set(builder_config.properties)
    assert "properties" not in config or "farm" not in config["properties"]


@pytest.mark.parametrize("carried", [{}, HOSTILE], ids=["nightly", "hostile"])
def test_a_project_build_uses_its_own_volume_cache_and_artifact_path(config, carried):
    props = build_properties(config, f"alpha:{TARGET}", carried)
    assert props.getProperty("project") == ""        # Buildbot's, from the source stamp
    assert render(props, CacheVolume()) == cache_volume_name("own", "alpha", TARGET, IMAGE)
    assert render(props, CacheVolume("first")) == cache_volume_name("own", "alpha", TARGET,
                                                                    IMAGE, "first")
    assert render(props, compile_cache_mount) == \
        f"{compile_cache_volume_name('own', IMAGE, TARGET)}:{COMPILE_CACHE_DIR}"
    assert render(props, ARCHIVE_NAME) == f"alpha-3b617a36869c-{TARGET}.tar.gz"
    step = package_step(config, f"alpha:{TARGET}")
    artifact_dir = render(props, step.args[1])
    assert artifact_dir.endswith(f"/artifacts/alpha/3b617a36869c/{TARGET}")


def test_a_project_s_caches_are_its_image_s_alone(config, tmp_path, monkeypatch):
    """Another image may carry another std under the same rustc version: neither its
    target directory nor its compile cache is the old image's."""
    newer = IMAGE.replace("1.96-abc", "1.96-def")
    (tmp_path / "farm.yaml").write_text(FARM.replace(IMAGE, newer))
    repinned = build_properties(buildmaster_config(load_farm()), f"alpha:{TARGET}", {})
    before = build_properties(config, f"alpha:{TARGET}", {})
    assert render(repinned, CacheVolume()) == cache_volume_name("own", "alpha", TARGET, newer)
    assert render(repinned, CacheVolume()) != render(before, CacheVolume())
    assert render(repinned, CacheVolume()).startswith(
        f"rustfarm-own-alpha-{TARGET}-1.96-def-")
    assert render(repinned, compile_cache_mount).split(":")[0] == \
        compile_cache_volume_name("own", newer, TARGET) != \
        compile_cache_volume_name("own", IMAGE, TARGET)


def test_a_pull_request_s_build_is_anyone_s_code(config):
    """Its scheduler's number (no change's) gives it a volume of its own, the compile
    cache read-only and its artifacts under the project's pr-<number>/."""
    props = build_properties(config, f"alpha:{TARGET}", {})
    props.setProperty("buildnumber", 12, "Build")
    props.setProperty(PULL_REQUEST_PROPERTY, 7, PULL_REQUEST_SOURCE)
    assert render(props, CacheVolume()) == pull_request_volume_name("own", "alpha", TARGET, 7, 12)
    assert render(props, compile_cache_mount).endswith(":ro")
    artifact_dir = render(props, package_step(config, f"alpha:{TARGET}").args[1])
    assert artifact_dir.endswith(f"/artifacts/alpha/pr-7/{TARGET}")
    [builder_config] = [b for b in config["builders"] if b.name == f"alpha:{TARGET}"]
    cargo = next(s for s in builder_config.factory.steps if s.kwargs.get("name") == "cargo build")
    assert render(props, cargo.kwargs["env"]["RUSTFARM_COMPILE_CACHE_READ_ONLY"]) == "1"
    trusted = build_properties(config, f"alpha:{TARGET}", HOSTILE)
    assert render(trusted, cargo.kwargs["env"]["RUSTFARM_COMPILE_CACHE_READ_ONLY"]) == ""


def test_a_project_build_s_cargo_profile_is_one_the_project_offers(config):
    [builder_config] = [b for b in config["builders"] if b.name == f"alpha:{TARGET}"]
    cargo = next(s for s in builder_config.factory.steps if s.kwargs.get("name") == "cargo build")
    for carried, profile in (({}, "release"), ({"profile": "dev"}, "dev"),
                             (HOSTILE, "release")):
        command = render(build_properties(config, f"alpha:{TARGET}", carried),
                         cargo.kwargs["command"])
        assert command[command.index("--profile") + 1] == profile
        assert f"profile.{profile}.strip=true" in command


JOB = "0123456789abcdef"


def test_an_upload_s_volume_and_paths_are_its_job_s(config, tmp_path):
    upload = build_properties(config, f"compile:{TARGET}", {COMPILE_JOB_PROPERTY: JOB,
                                                           "upload": "/etc/shadow"})
    assert render(upload, CacheVolume()) == upload_volume_name("own", JOB, TARGET)
    assert render(upload, compile_cache_mount).endswith(":ro")
    [builder_config] = [b for b in config["builders"] if b.name == f"compile:{TARGET}"]
    fetch = next(s for s in builder_config.factory.steps if s.step_class.__name__ == "FetchSource")
    assert render(upload, fetch.args[0]).endswith(f"/.farm/uploads/{JOB}/source.tar.gz")
    assert render(upload, package_step(config, f"compile:{TARGET}").args[1]).endswith(
        f"/.farm/uploads/{JOB}/results/{TARGET}")
    # A job id the compile endpoint did not make names no path and no volume.
    for job in ("../../etc", "", JOB + "0"):
        forged = build_properties(config, f"compile:{TARGET}", {COMPILE_JOB_PROPERTY: job})
        with pytest.raises(ValueError, match="upload"):
            fetch.args[0].getRenderingFor(forged)
        with pytest.raises(ValueError, match="upload"):
            CacheVolume().getRenderingFor(forged)


def test_a_project_build_never_takes_an_upload_s_job(config):
    # A project's build carrying a job is still the project's, with its cache writable.
    project = build_properties(config, f"alpha:{TARGET}", {COMPILE_JOB_PROPERTY: JOB})
    assert render(project, CacheVolume()) == cache_volume_name("own", "alpha", TARGET, IMAGE)
    assert not render(project, compile_cache_mount).endswith(":ro")


def test_a_volume_is_never_rendered_without_a_project():
    with pytest.raises(ValueError, match="project"):
        CacheVolume().getRenderingFor(Properties(farm="own", target=TARGET, farm_project=""))

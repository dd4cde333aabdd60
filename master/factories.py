"""The build of one project for one target, as a Buildbot factory."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from buildbot.interfaces import IRenderable
from buildbot.locks import MasterLock
from buildbot.process.factory import BuildFactory
from buildbot.process.properties import Interpolate, Property
from buildbot.process.results import SKIPPED
from twisted.internet import defer
from zope.interface import implementer

from rustfarm.farmfile import Farm, Project, Target
from rustfarm.farmfile.model import COMPILE_PROJECT
from rustfarm.names import (PROJECT_PROPERTY, PULL_REQUEST_DIR, TARGET_PROPERTY, is_reproduction,
                            pull_request, upload_job)
from rustfarm.state import StateDir
from rustfarm.targets import target_table
from rustfarm.crate_store import CrateStore
from rustfarm.dependencies import CargoSettings, machine_config_files
from rustfarm.release_keys import ReleaseKeys
from rustfarm.workers.docker_volumes import CACHE_DIR, CRATE_COPIES, CRATE_STORE_PROPERTY

from .build_env import compile_cache_env, reproducible_env, s3_compile_cache_env
from .builds import FarmBuild
from .cargo_steps import AUDITABLE, Cargo
from .dependency_steps import Dependencies
from .artifact_places import ArtifactPlaces
from .release_steps import REPRODUCTION_DIR, CompareWithRelease, PublishRelease, SignRelease
from .steps import PruneArtifacts, SnapshotSource
from .tool_steps import CompileCacheSetup, FetchSource, Package, ToolchainCheck, WorkerTool

# Where sources are unpacked and cargo builds: in the builder's directory on a
# local worker; in the (project, target) cache volume inside a container, where
# a fresh container finds the previous build's files.
LOCAL_DIR = "%(prop:builddir)s/build"

ARCHIVE_NAME = Interpolate(f"%(prop:{PROJECT_PROPERTY})s-%(prop:revision_label)s-"
                           f"%(prop:{TARGET_PROPERTY})s.tar.gz")
UPLOAD_ARCHIVE_NAME = Interpolate(f"%(prop:crate_name)s-%(prop:{TARGET_PROPERTY})s.tar.gz")


@functools.cache
def _worker_tool() -> WorkerTool:
    return WorkerTool()


@implementer(IRenderable)
@dataclass(frozen=True)
class CargoProfile:
    """The build's cargo profile: the one its request chose where the project offers it
    (the force forms check it too), else the project's own; a change or a scheduler may
    carry any text."""

    choices: tuple[str, ...]
    default: str

    def getRenderingFor(self, props) -> str:
        chosen = props.getProperty("profile")
        return chosen if chosen in self.choices else self.default


@implementer(IRenderable)
@dataclass(frozen=True)
class UploadPath:
    """A path of an upload builder's build on the master: from its job's id, which the
    compile endpoint made (rustfarm/names.py checks it); never a path a request names."""

    paths: StateDir
    target: str = ""

    def getRenderingFor(self, props) -> str:
        job = upload_job(props)
        if job is None:
            raise ValueError("an upload builder's build without its upload's job")
        if self.target:
            return str(self.paths.upload_results(job, self.target))
        return str(self.paths.upload_source(job))


def _cargo_args(farm: Farm, project: Project, target: Target, profile: CargoProfile,
                store_config=None) -> list:
    """cargo's arguments; with ``store_config``, the file that takes the build's crates
    from the farm's crate store (written by the dependencies step), offline."""
    args = ["--target", target.triple, "--profile", profile]
    if store_config is not None:
        return [*args, *_feature_args(project, profile), "--config", store_config, "--offline"]
    return [*args, *_feature_args(project, profile),
            *[item for setting in farm.crates.cargo_config() for item in ("--config", setting)]]


# The farm's profile for routers' small flash: a project whose profile is min-size gets
# it (a min-size profile of its own Cargo.toml gives way to this one).
MIN_SIZE_PROFILE = "min-size"
MIN_SIZE_SETTINGS = ('inherits="release"', 'opt-level="z"', 'lto="fat"', "codegen-units=1",
                     'panic="abort"', "strip=true")


def _feature_args(project: Project, profile: CargoProfile) -> list:
    args = []
    if MIN_SIZE_PROFILE in project.profiles:
        for setting in MIN_SIZE_SETTINGS:
            args += ["--config", f"profile.{MIN_SIZE_PROFILE}.{setting}"]
    if project.features:
        args += ["--features", ",".join(project.features)]
    if project.strip:
        # Binaries ship without symbols (a router's flash is small); `strip: false` keeps them.
        args += ["--config", Interpolate("profile.%(kw:profile)s.strip=true", profile=profile)]
    return args


def has_c_compiler(triple: str) -> bool:
    """Whether the target's image has a C compiler for build scripts (the table says)."""
    spec = target_table().targets.get(triple)
    return spec is None or spec.cc is not None


def package_kinds(project: Project, triple: str) -> tuple[tuple[str, str], ...]:
    """The packages the project's release has for the target: (kind, architecture),
    where the table gives the target one (Debian's and OpenWrt's names)."""
    spec = target_table().targets.get(triple)
    if spec is None:
        return ()
    arches = {"deb": spec.debian, "ipk": spec.openwrt}
    return tuple((kind, arches[kind]) for kind in project.packages if arches.get(kind))


def cargo_settings(farm: Farm, paths: StateDir) -> CargoSettings:
    """How the farm's cargo resolves and fetches crates: in its own home, with this
    machine's cargo configuration and farm.yaml's mirror of crates.io."""
    mirror = farm.crates.cargo_config() if farm.crates.kind == "registry" else ()
    return CargoSettings(cargo_home=paths.cargo_home, config_files=machine_config_files(),
                         config=mirror, registries=farm.crates.registries,
                         secrets=paths.secrets)


@functools.cache
def _artifact_places(artifacts: str, url: str) -> tuple[IRenderable, IRenderable, Interpolate]:
    """Where a build's artifacts go, their URL and their release's URL: renderables
    for every builder, made once. A reproduction's go beside the release's, apart."""
    project = f"%(prop:{PROJECT_PROPERTY})s"
    release = f"{url}plugins/artifacts/{project}/%(prop:revision_label)s/"
    pulls = f"{url}plugins/artifacts/{project}/%(kw:pr)s/"
    return (ReleasePlace(Interpolate(f"{artifacts}/{project}/%(prop:revision_label)s/"
                                     f"%(prop:{TARGET_PROPERTY})s"), "/",
                         f"{artifacts}/{project}/%(kw:pr)s/%(prop:{TARGET_PROPERTY})s"),
            ReleasePlace(Interpolate(release + f"%(prop:{TARGET_PROPERTY})s/"), "",
                         pulls + f"%(prop:{TARGET_PROPERTY})s/"),
            Interpolate(release))


@implementer(IRenderable)
@dataclass(frozen=True)
class ReleasePlace:
    """A target's place in the artifact store (its directory or URL), or for a
    reproduction, its REPRODUCTION_DIR there; for a pull request's build, the target's
    place under the project's ``pr-<number>/`` (``pull_place``, its %(kw:pr)s)."""

    place: Interpolate
    separator: str
    pull_place: str

    @defer.inlineCallbacks
    def getRenderingFor(self, props):
        number = pull_request(props)
        if number is not None:
            return (yield props.render(Interpolate(
                self.pull_place, pr=PULL_REQUEST_DIR.format(number=number))))
        place = yield props.render(self.place)
        if is_reproduction(props):
            return f"{place}{self.separator}{REPRODUCTION_DIR}" + ("/" if not self.separator
                                                                  else "")
        return place


def _not_reproduction(step) -> bool:
    return not is_reproduction(step.build)


def _not_pull_request(step) -> bool:
    return pull_request(step.build) is None


def _releases(step) -> bool:
    """Whether the build makes or changes a release: not a reproduction's, not a pull
    request's (signed, published, pruned by the project's own builds alone)."""
    return _not_reproduction(step) and _not_pull_request(step)


def _reproduction(step) -> bool:
    return is_reproduction(step.build)


def _project_place(places: ArtifactPlaces, project: str):
    return places.root / project


def _skipped(results, step) -> bool:
    return results == SKIPPED


def _worker_store(pool, paths: StateDir):
    """Where the build's worker sees the farm's crate store: in place on a local worker,
    where its engine mounts it on a docker worker (its ``crate_store`` property), and
    nowhere ("") elsewhere."""
    if pool.kind == "local":
        return str(paths.crate_store)
    return Property(CRATE_STORE_PROPERTY, default="")


def _pool_crates(pool) -> dict | None:
    """Where an EC2 pool's instances share their crate copies: its compile cache's
    bucket (through each instance's relay), when it has one."""
    if pool is None or pool.kind != "ec2" or not pool.compile_cache:
        return None
    return {"bucket": pool.compile_cache.bucket, "prefix": pool.compile_cache.prefix}


def build_factory(farm: Farm, project: Project, target: Target, paths: StateDir,
                  in_container: bool) -> BuildFactory:
    """A project's build; for the compile project, an upload's (its source comes with
    the request, its binaries are the crate's, its archive goes back to the client)."""
    upload = project.name == COMPILE_PROJECT
    base = CACHE_DIR if in_container else LOCAL_DIR
    source_dir = Interpolate(f"{base}/src")
    target_dir = Interpolate(f"{base}/target")
    crate_dir = (f"{base}/src/%(prop:crate_dir)s" if upload
                 else f"{base}/src/{project.subdir}").rstrip("/")
    pool = farm.pools.get(target.pool)
    docker = in_container and pool is not None and pool.kind == "docker"
    # The farm fetches every build's crates; a worker that cannot see its store (a
    # remote engine's, an EC2 instance's) is sent its own copies of them.
    fetches = farm.crates.fetched_by_farm and pool is not None and pool.kind in ("docker",
                                                                                "local", "ec2")
    store_config = Interpolate(f"{base}/.rustfarm/dependencies.toml") if fetches else None
    store = CrateStore(paths.crate_store, farm.crates.keep_days)
    profile = CargoProfile(project.profiles, project.profile)
    cargo_args = _cargo_args(farm, project, target, profile, store_config)
    env = {**target.cargo_env(), "CARGO_TARGET_DIR": target_dir, "CARGO_TERM_COLOR": "never",
           **reproducible_env(target, base, docker)}

    memory_limit = pool.memory if docker else None
    if docker and pool.compile_cache:
        env.update(compile_cache_env(pool.compile_cache, read_only=upload))
    elif in_container and pool is not None and pool.kind == "ec2" and pool.compile_cache:
        env.update(s3_compile_cache_env(pool.compile_cache, read_only=upload))
    has_cache = "RUSTC_WRAPPER" in env

    # cargo-auditable runs the build and the tests alike, so that the package step's
    # cargo, run again, finds nothing to build (without it, it would build anew).
    cargo = ["cargo", AUDITABLE] if project.auditable else ["cargo"]

    def cargo_step(subcommand: str, doing: str, done: str) -> Cargo:
        return Cargo(name=f"cargo {subcommand}", tool=tool, memory_limit=memory_limit,
                     triple=target.triple, c_compiler=has_c_compiler(target.triple),
                     lockfile=Interpolate(f"{crate_dir}/Cargo.lock"),
                     workdir=Interpolate(crate_dir),
                     command=[*cargo, subcommand, *cargo_args], env=env, logEnviron=False,
                     haltOnFailure=True, description=doing, descriptionDone=done)

    places = ArtifactPlaces(farm.artifacts, paths)
    artifact_dir, artifact_url, release_url = _artifact_places(str(places.build_base),
                                                               farm.farm.url)
    # Those cargo reports building (the build's cargo command, run again, builds nothing
    # new), or farm.yaml's binaries of them; cargo also says what it linked into them.
    binaries = ["--built-by", Interpolate(crate_dir), *cargo, "build", *cargo_args]
    if project.binaries:
        binaries = ["--only", ",".join(b + target.executable_suffix for b in project.binaries),
                    *binaries]
    archive = ARCHIVE_NAME
    if upload:
        artifact_dir = UploadPath(paths, target.triple)
        archive = UPLOAD_ARCHIVE_NAME

    factory = BuildFactory()
    factory.buildClass = FarmBuild
    if not upload:
        factory.addStep(SnapshotSource(project, paths.sources, paths.snapshots,
                                       farm.artifacts.keep, haltOnFailure=True,
                                       locks=[MasterLock(f"snapshot-{project.name}")
                                              .access("exclusive")]))
    tool = _worker_tool()
    factory.addSteps([
        FetchSource(UploadPath(paths) if upload else Property("snapshot"), source_dir, tool=tool,
                    workdir="build",
                    haltOnFailure=True, logEnviron=False),
        ToolchainCheck(tool=tool, arguments=["toolchain", Interpolate(crate_dir), project.name,
                                             project.toolchain if project.toolchain_pinned
                                             else "-"],
                       workdir="build", haltOnFailure=True, logEnviron=False),
    ])
    if fetches:
        factory.addStep(Dependencies(
            UploadPath(paths) if upload else Property("snapshot"),
            Property("crate_dir") if upload else project.subdir,
            store, cargo_settings(farm, paths),
            _worker_store(pool, paths), source_dir, Interpolate(f"{base}/.rustfarm/crates"),
            store_config, artifact_dir=artifact_dir,
            artifact_url=None if upload else artifact_url, upload=upload,
            worker_copies=Interpolate(f"{base}/{CRATE_COPIES}"), tool=tool, workdir="build",
            pool_crates=_pool_crates(pool) if in_container else None,
            haltOnFailure=True, logEnviron=False))
    if has_cache:
        # A reproduction builds without the compile cache: what the cache hands out
        # is part of what it checks.
        factory.addStep(CompileCacheSetup(tool=tool, workdir="build", logEnviron=False, env=env,
                                          doStepIf=_not_reproduction, hideStepIf=_skipped))
    factory.addStep(cargo_step("build", "compiling", "compiled"))
    if project.test and target.can_run:
        factory.addStep(cargo_step("test", "testing", "tested"))
    factory.addStep(Package(archive, artifact_dir,
                            url=None if upload else artifact_url, tool=tool,
                            arguments=["package", archive, *binaries],
                            workdir="build", env=env, haltOnFailure=True, logEnviron=False))
    if not upload:
        factory.addStep(SignRelease(
            ReleaseKeys(paths), store if fetches else None,
            artifact_dir, archive, project.name, project.source, target.triple,
            farm.farm.url, profile, cargo_args, target.cargo_env(), url=artifact_url,
            package_kinds=package_kinds(project, target.triple), service=project.service,
            maintainer=project.maintainer, haltOnFailure=True, doStepIf=_releases,
            hideStepIf=_skipped))
        factory.addStep(CompareWithRelease(artifact_dir, release_url, places,
                                           doStepIf=_reproduction, hideStepIf=_skipped))
        if places.remote:
            # A pull request's files too: its pr-<number>/ is served from the store.
            factory.addStep(PublishRelease(artifact_dir, places, haltOnFailure=True))
        factory.addStep(PruneArtifacts(functools.partial(_project_place, places, project.name),
                                       farm.artifacts.keep, release_url=release_url,
                                       doStepIf=_releases, hideStepIf=_skipped))
    return factory

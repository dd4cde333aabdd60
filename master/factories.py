"""The build of one project for one target, as a Buildbot factory."""

from __future__ import annotations

from importlib import resources

from buildbot.plugins import steps, util
from buildbot.process.factory import BuildFactory

from rustfarm.farmfile import Farm, Project, Target

from .paths import MasterPaths
from .steps import Cargo, PruneArtifacts, SnapshotSource

SOURCE_DIR = "build/src"
ARCHIVE_NAME = util.Interpolate("%(prop:project)s-%(prop:revision_label)s-%(prop:target)s.tar.gz")


WORKER_TOOL = ".rustfarm/farm_worker_tool.py"


def _worker_tool() -> str:
    return resources.files("rustfarm.workers").joinpath("scripts", "farm_worker_tool.py").read_text()


@util.renderer
def profile_dir(props) -> str:
    """Cargo's output directory for the build's profile."""
    profile = props.getProperty("profile")
    return "debug" if profile in ("dev", "test") else profile


def _cargo_args(farm: Farm, project: Project, target: Target) -> list:
    args = ["--target", target.triple, "--profile", util.Property("profile")]
    if project.features:
        args += ["--features", ",".join(project.features)]
    for setting in farm.crates.cargo_config():
        args += ["--config", setting]
    return args


def _cargo_env(target: Target) -> dict:
    return {
        **target.cargo_env(),
        "CARGO_TARGET_DIR": util.Interpolate("%(prop:builddir)s/build/target"),
        "CARGO_TERM_COLOR": "never",
    }


def build_factory(farm: Farm, project: Project, target: Target, paths: MasterPaths) -> BuildFactory:
    workdir = f"{SOURCE_DIR}/{project.subdir}".rstrip("/")
    cargo_args = _cargo_args(farm, project, target)
    env = _cargo_env(target)
    bindir = util.Interpolate("%(prop:builddir)s/build/target/%(kw:triple)s/%(kw:profile)s",
                              triple=target.triple, profile=profile_dir)
    artifact_dir = util.Interpolate(
        f"{paths.artifacts}/%(prop:project)s/%(prop:revision_label)s/%(prop:target)s")
    artifact_url = util.Interpolate(
        f"{farm.farm.url}plugins/artifacts/%(prop:project)s/%(prop:revision_label)s/"
        "%(prop:target)s/")
    binaries = [b + target.executable_suffix for b in project.binaries]

    factory = BuildFactory()
    factory.addSteps([
        SnapshotSource(project, paths.sources, paths.snapshots, farm.artifacts.keep,
                       haltOnFailure=True),
        steps.StringDownload(_worker_tool(), name="send worker tool", workerdest=WORKER_TOOL,
                             workdir="build", haltOnFailure=True),
        steps.FileDownload(name="download source", mastersrc=util.Property("snapshot"),
                           workerdest="source.tar.gz", workdir="build", haltOnFailure=True),
        steps.ShellCommand(name="unpack source", workdir="build", haltOnFailure=True,
                           logEnviron=False,
                           command=["python3", WORKER_TOOL, "unpack", "source.tar.gz", "src"]),
        Cargo(name="cargo build", lockfile=f"{workdir}/Cargo.lock", workdir=workdir,
              command=["cargo", "build", *cargo_args], env=env, haltOnFailure=True,
              logEnviron=False,
              description="compiling", descriptionDone="compiled"),
    ])
    if project.test and target.can_run:
        factory.addStep(Cargo(name="cargo test", lockfile=f"{workdir}/Cargo.lock",
                              workdir=workdir, command=["cargo", "test", *cargo_args], env=env,
                              logEnviron=False,
                              haltOnFailure=True, description="testing", descriptionDone="tested"))
    factory.addSteps([
        steps.ShellCommand(name="package", workdir="build", haltOnFailure=True, logEnviron=False,
                           command=["python3", WORKER_TOOL, "package", ARCHIVE_NAME, bindir,
                                    *binaries]),
        steps.FileUpload(name="upload archive", workersrc=ARCHIVE_NAME, workdir="build",
                         masterdest=util.Interpolate("%(kw:dir)s/%(kw:name)s", dir=artifact_dir,
                                                     name=ARCHIVE_NAME),
                         url=util.Interpolate("%(kw:url)s%(kw:name)s", url=artifact_url,
                                              name=ARCHIVE_NAME),
                         urlText=ARCHIVE_NAME, mode=0o644, haltOnFailure=True),
        steps.FileUpload(name="upload SHA256SUMS", workersrc="SHA256SUMS", workdir="build",
                         masterdest=util.Interpolate("%(kw:dir)s/SHA256SUMS", dir=artifact_dir),
                         url=util.Interpolate("%(kw:url)sSHA256SUMS", url=artifact_url),
                         urlText="SHA256SUMS", mode=0o644, haltOnFailure=True),
        PruneArtifacts(paths.artifacts / project.name, farm.artifacts.keep),
    ])
    return factory

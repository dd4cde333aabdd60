"""Names the master gives things and the command line asks for over the REST API.

A build's properties come, in this order, from the farm's global properties, its
changes, its request (a scheduler, a force form, an upload), its builder, then
Buildbot's own (``project``, ``branch``, ``revision``, ``repository``,
``codebase``, ``buildnumber``, from the source stamp) and the worker's. So only a
property its builder sets, under a name Buildbot does not set after it, says which
builder a build is of: those below. Which volume, lock, cache, artifact path,
release or secret a build uses is rendered from them alone.
"""

from __future__ import annotations

import re
import secrets

# Set by every builder (rustfarm/builder_defs.py); nothing a change, a scheduler, a force
# form or a source stamp carries overrides them.
FARM_PROPERTY = "farm"
PROJECT_PROPERTY = "farm_project"
TARGET_PROPERTY = "target"
IMAGE_PROPERTY = "image"
# Set by a docker pool's worker: the id of the image the build ran in, on its engine.
IMAGE_ID_PROPERTY = "image_id"
# Whether the builder builds uploads (the compile endpoint's builders).
UPLOAD_BUILDER_PROPERTY = "farm_upload_builder"

# Set by every build as its steps end: {step number: seconds it took}, to the
# microsecond (Buildbot's REST API gives steps whole-second times).
STEP_DURATIONS_PROPERTY = "step_durations"

# What Buildbot sets after the builder's properties, from the source stamp or the
# build itself: never a name of the farm's builder properties.
BUILDBOT_OWNED_PROPERTIES = frozenset({
    "project", "branch", "revision", "repository", "codebase", "buildnumber",
    "buildername", "builderid", "projectname", "projectid", "workername", "basedir",
    "builddir"})

# The property the compile endpoint gives an upload's build (its job's id): anyone's
# code, which reads the shared compile cache but may not add to it. Honoured on the
# upload builders only.
COMPILE_JOB_PROPERTY = "compile_job"


def is_upload_build(props) -> bool:
    """Whether a build (its properties) is an upload's: its builder says so."""
    return bool(props.getProperty(UPLOAD_BUILDER_PROPERTY))


# An upload's job id: it names a directory on the master and a volume.
_UPLOAD_JOB_ID = re.compile(r"[0-9a-f]{16}")


def new_upload_job_id() -> str:
    return secrets.token_hex(8)


def upload_job(props) -> str | None:
    """The upload an upload builder's build is of (a job id the compile endpoint made);
    None for every other builder's build, and for anything else in its place."""
    if not is_upload_build(props):
        return None
    job = props.getProperty(COMPILE_JOB_PROPERTY)
    return job if isinstance(job, str) and _UPLOAD_JOB_ID.fullmatch(job) else None


# A rebuild of a release to check that it reproduces: set by the project's verify
# scheduler's form alone (a change or another scheduler carrying the name is ignored).
# It builds in a volume of its own with no compile cache, and writes beside the release.
REPRODUCE_PROPERTY = "farm_reproduce"
FORCE_FORM_SOURCE = "Force Build Form"      # the source Buildbot's force forms give


def is_reproduction(props) -> bool:
    """Whether a build (or its properties) is a reproduction its project's form asked for."""
    props = props.getProperties() if hasattr(props, "getProperties") else props
    return bool(props.getProperty(REPRODUCE_PROPERTY)) and \
        props.getPropertySource(REPRODUCE_PROPERTY) == FORCE_FORM_SOURCE


# The release a reproduction checks (its revision label), from the verify form: a plain
# directory's request names no revision, its builds find it.
RELEASE_PROPERTY = "farm_release"
# The worker that built each target's release, by builder: set on a reproduction's
# request by the verify scheduler alone, so that the builder rebuilds it on another.
RELEASE_WORKERS_PROPERTY = "farm_release_workers"
VERIFY_SCHEDULER_SOURCE = "Verify scheduler"
# Set by a reproduction's last step: the worker it ran on, and the one that built the
# release it checked.
REBUILT_ON_PROPERTY = "rebuilt_on"
RELEASE_BUILT_ON_PROPERTY = "release_built_on"


def release_workers(props) -> dict[str, str]:
    """For a reproduction's request (or build), the workers that built the releases it
    checks, by builder; {} for any other, or when the scheduler named none."""
    if props is None or not is_reproduction(props):
        return {}
    props = props.getProperties() if hasattr(props, "getProperties") else props
    found = props.getProperty(RELEASE_WORKERS_PROPERTY)
    if not isinstance(found, dict) \
            or props.getPropertySource(RELEASE_WORKERS_PROPERTY) != VERIFY_SCHEDULER_SOURCE:
        return {}
    return {b: w for b, w in found.items() if isinstance(b, str) and isinstance(w, str) and w}


# A pull (merge) request's build: set by its project's pull-request scheduler alone,
# from the forge's webhook (a change or another scheduler carrying the name is ignored).
# Anyone's code: a volume of its own, the compile cache read-only, nothing signed or
# published, its artifacts under ``<project>/pr-<number>/``.
PULL_REQUEST_PROPERTY = "farm_pull_request"
PULL_REQUEST_SOURCE = "Pull request scheduler"
PULL_REQUEST_DIR = "pr-{number}"


def _pull_number(number, source: str) -> int | None:
    if source != PULL_REQUEST_SOURCE:
        return None
    return number if isinstance(number, int) and not isinstance(number, bool) and number > 0 \
        else None


def pull_request(props) -> int | None:
    """The number of the pull request a build is of, or None."""
    props = props.getProperties() if hasattr(props, "getProperties") else props
    number = props.getProperty(PULL_REQUEST_PROPERTY)
    if number is None:
        return None
    return _pull_number(number, props.getPropertySource(PULL_REQUEST_PROPERTY))


def reported_pull_request(properties: dict) -> int | None:
    """The same, of a build as Buildbot's reporters and REST API give its properties
    (name: [value, source])."""
    found = properties.get(PULL_REQUEST_PROPERTY)
    return _pull_number(*found) if found else None


def is_untrusted(props) -> bool:
    """Whether a build runs code nobody in the farm vouched for: an upload's or a pull
    request's. Such a build reads the compile cache but never adds to it."""
    return is_upload_build(props) or pull_request(props) is not None


def builder_name(project: str, triple: str) -> str:
    """The builder of a (project, target): ``project:triple``."""
    return f"{project}:{triple}"


def scheduler_id(text: str) -> str:
    """Scheduler names appear in URLs: keep them to identifier characters."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def project_verify_scheduler(project: str) -> str:
    """The scheduler that rebuilds a project's release to check it (`farm verify-build`)."""
    return scheduler_id(f"verify-{project}")


def project_force_scheduler(project: str) -> str:
    """The scheduler of a project's force form (every target, or those chosen)."""
    return scheduler_id(f"force-{project}")


# The settings (JSON) beside the .tac files `farm up` writes, read by the code the .tac
# files hand their application to (master/application.py, workers/local_application.py).
MASTER_SETTINGS_FILE = "master.json"
WORKER_SETTINGS_FILE = "worker.json"

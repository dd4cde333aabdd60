"""Names the master gives things and the command line asks for over the REST API."""

from __future__ import annotations

# The property the compile endpoint gives an upload's build (its job's id): anyone's
# code, which reads the shared compile cache but may not add to it.
COMPILE_JOB_PROPERTY = "compile_job"


def is_upload_build(props) -> bool:
    """Whether a build (its properties) is an upload's, from the compile endpoint."""
    return bool(props.getProperty(COMPILE_JOB_PROPERTY))


def builder_name(project: str, triple: str) -> str:
    """The builder of a (project, target): ``project:triple``."""
    return f"{project}:{triple}"


def scheduler_id(text: str) -> str:
    """Scheduler names appear in URLs: keep them to identifier characters."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def project_force_scheduler(project: str) -> str:
    """The scheduler of a project's force form (every target, or those chosen)."""
    return scheduler_id(f"force-{project}")

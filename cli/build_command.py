"""`farm build`: force a project's builds over the REST API and follow them."""

from __future__ import annotations

from dataclasses import dataclass, field

from rustfarm.build_records import newest
from rustfarm.errors import FarmError
from rustfarm.failures import error_lines
from rustfarm.farmfile import Farm
from rustfarm.farmfile.errors import did_you_mean
from rustfarm.names import (
    RELEASE_PROPERTY,
    STEP_DURATIONS_PROPERTY,
    builder_name,
    project_force_scheduler,
    project_verify_scheduler,
)
from rustfarm.plumbing import DeadlinePassed, wait_until
from rustfarm.progress import say
from rustfarm.runtime import running_farm

from .api import RESULTS, FarmApi

FINISHED_OK = (0, 1)   # success, warnings
FAILED_STEP = (2, 4)   # failure, exception


@dataclass
class BuildRequest:
    builder: str
    brid: int
    build: dict | None = None
    steps_seen: set[int] = field(default_factory=set)
    done: bool = False


def force(farm: Farm, api: FarmApi, project_name: str, targets: list[str], branch: str | None,
          revision: str | None, profile: str | None,
          reproduce: bool = False, release: str = "") -> list[BuildRequest]:
    """Request the project's builds for ``targets`` (all when empty); with ``reproduce``,
    rebuilds of ``release`` (a revision label) through its verify scheduler."""
    declared = farm.projects.get(project_name)
    farm = running_farm(farm)
    project = farm.projects.get(project_name)
    if project is None:
        raise FarmError(f"no project '{project_name}' in {farm.path.name}"
                        f"{did_you_mean(project_name, farm.projects)}; "
                        f"projects: {', '.join(farm.projects) or 'none'}")
    chosen = targets or list(project.targets)
    for triple in chosen:
        if declared and triple in declared.targets and triple not in project.targets:
            raise FarmError(f"target '{triple}' is not built by the running farm: no Docker "
                            "engine answered when it started (farm status, farm up)")
        if triple not in project.targets:
            raise FarmError(f"project '{project_name}' is not built for target '{triple}'"
                            f"{did_you_mean(triple, project.targets)}; its targets: "
                            f"{', '.join(project.targets)}")
    if not api.answers():
        raise FarmError(f"the farm is not running at {api.base} (start it with `farm up`)")
    user = api.login_from_secrets(farm)
    params = {"targets": chosen, "branch": branch or project.branches[0],
              "revision": revision or "", "username": user, "reason": "farm build"}
    scheduler = project_force_scheduler(project_name)
    if reproduce:
        scheduler = project_verify_scheduler(project_name)
        params["reason"] = "farm verify-build"
        params[RELEASE_PROPERTY] = release
    else:
        params["profile"] = profile or project.profile
    _, requests_by_builder = api.rpc(f"forceschedulers/{scheduler}", "force", **params)
    names = api.builder_names()
    wanted = {builder_name(project_name, t) for t in chosen}
    found = [BuildRequest(names[int(bid)], brid) for bid, brid in requests_by_builder.items()]
    return sorted((r for r in found if r.builder in wanted), key=lambda r: r.builder)


def follow(farm: Farm, api: FarmApi, requests: list[BuildRequest], timeout: float) -> bool:
    """Print progress until every build ends; True when all succeeded."""
    def all_done() -> bool:
        for request in requests:
            if not request.done:
                _poll(farm, api, request)
        return all(r.done for r in requests)

    try:
        wait_until(all_done, timeout, "the builds", interval=0.5)
    except DeadlinePassed:
        raise FarmError(f"builds still running after {timeout:.0f} s; follow them at "
                        f"{farm.farm.url}") from None
    ok = True
    for request in requests:
        build = request.build or {}
        outcome = RESULTS.get(build.get("results"), build.get("results"))
        ok &= build.get("results") in FINISHED_OK
        if build.get("results") in FINISHED_OK:
            say(f"{request.builder}: {outcome} ({build.get('state_string', '')})")
        else:
            say(f"{request.builder}: {outcome}")
        for step in api.get(f"builds/{build['buildid']}/steps")["steps"]:
            for link in step.get("urls", []):
                if link["url"].startswith(farm.farm.url + "plugins/artifacts/"):
                    kind = "release" if link["url"].endswith("/") else "artifact"
                    say(f"  {kind}: {link['url']}")
        if build.get("results") not in FINISHED_OK:
            report_failure(api, build)
            say(f"  log: {build_url(farm, build)}")
    return ok


def build_url(farm: Farm, build: dict) -> str:
    return f"{farm.farm.url}#/builders/{build['builderid']}/builds/{build['number']}"


def failed_step(api: FarmApi, build: dict) -> dict | None:
    """The step that ended the build: the first that failed or broke."""
    steps = api.get(f"builds/{build['buildid']}/steps")["steps"]
    return next((s for s in steps if s["results"] in FAILED_STEP), None)


def report_failure(api: FarmApi, build: dict) -> None:
    """The failing step's name and its error lines (compiler errors, failed tests)."""
    step = failed_step(api, build)
    if step is None:
        return
    say(f"  failed step: {step['name']} ({step['state_string']})")
    for line in error_lines(api.step_log(build["buildid"], step["number"])):
        say(f"    {line}")


def step_seconds(step: dict, durations: dict, build_complete: bool) -> float | None:
    """How long a finished step took: as the build measured it, else (a step the build
    does not time, such as waiting for locks) from Buildbot's whole seconds; None
    while the build's measure may still come (it is published just after the step
    ends, and before the next step's)."""
    if str(step["number"]) in durations:
        return float(durations[str(step["number"])])
    later_timed = any(int(n) > step["number"] for n in durations)
    if not build_complete and not later_timed:
        return None
    return float((step["complete_at"] or 0) - (step["started_at"] or 0))


def _poll(farm: Farm, api: FarmApi, request: BuildRequest) -> None:
    builds = api.get("builds", buildrequestid=request.brid,
                     property=STEP_DURATIONS_PROPERTY)["builds"]
    if not builds:
        return
    build = newest(builds)
    if request.build is None or request.build["buildid"] != build["buildid"]:
        say(f"{request.builder}: build #{build['number']} started "
            f"({farm.farm.url}#/builders/{build['builderid']}/builds/{build['number']})")
        request.steps_seen = set()
    request.build = build
    durations = (build.get("properties", {}).get(STEP_DURATIONS_PROPERTY) or [{}])[0] or {}
    for step in api.get(f"builds/{build['buildid']}/steps")["steps"]:
        if step["complete"] and step["stepid"] not in request.steps_seen:
            took = step_seconds(step, durations, build["complete"])
            if took is None:
                break               # its duration is published a moment after it ends
            request.steps_seen.add(step["stepid"])
            say(f"{request.builder}:   {step['name']}: {RESULTS.get(step['results'])} "
                f"({step['state_string']}, {took:.1f} s)")
    # A build ended RETRY (its worker vanished) is followed by another for the same request.
    if build["complete"] and build["results"] != 5:
        request.done = True

"""`farm logs`: a build's logs in the terminal, from the master's REST API."""

from __future__ import annotations

from rustfarm.errors import FarmError
from rustfarm.farmfile import Farm
from rustfarm.farmfile.errors import did_you_mean
from rustfarm.names import builder_name
from rustfarm.progress import say

from .api import RESULTS, FarmApi


def find_build(farm: Farm, api: FarmApi, project: str, target: str | None,
               number: int | None) -> tuple[dict, str]:
    """The build asked for: the builder of (project, target), its newest build or #number."""
    declared = farm.projects.get(project)
    if declared is None:
        raise FarmError(f"no project '{project}' in {farm.path.name}"
                        f"{did_you_mean(project, farm.projects)}; "
                        f"projects: {', '.join(farm.projects) or 'none'}")
    if target is None:
        if len(declared.targets) != 1:
            raise FarmError(f"project '{project}' has {len(declared.targets)} targets; name "
                            f"one with --target ({', '.join(declared.targets)})")
        target = declared.targets[0]
    if target not in declared.targets:
        raise FarmError(f"project '{project}' is not built for target '{target}'"
                        f"{did_you_mean(target, declared.targets)}; its targets: "
                        f"{', '.join(declared.targets)}")
    ids = {name: builderid for builderid, name in api.builder_names().items()}
    name = builder_name(project, target)
    if name not in ids:
        raise FarmError(f"the running farm has no builder {name} (farm status, farm reload)")
    if number is None:
        builds = api.get(f"builders/{ids[name]}/builds", order="-number", limit=1)["builds"]
        if not builds:
            raise FarmError(f"{name} has not built anything yet (farm build {project} "
                            f"--target {target})")
        return builds[0], target
    builds = api.get(f"builders/{ids[name]}/builds", number=number)["builds"]
    if not builds:
        raise FarmError(f"{name} has no build #{number}")
    return builds[0], target


def show_logs(farm: Farm, api: FarmApi, project: str, target: str | None,
              number: int | None, step_name: str | None) -> None:
    build, target = find_build(farm, api, project, target, number)
    state = RESULTS.get(build["results"], build["results"])
    say(f"{project} for {target}: build #{build['number']}"
        f": {state} ({build['state_string']})")
    steps = api.get(f"builds/{build['buildid']}/steps")["steps"]
    if step_name is not None:
        chosen = [s for s in steps if s["name"] == step_name]
        if not chosen:
            names = [s["name"] for s in steps]
            raise FarmError(f"build #{build['number']} has no step '{step_name}'"
                            f"{did_you_mean(step_name, names)}; its steps: {', '.join(names)}")
        steps = chosen
    for step in steps:
        result = RESULTS.get(step["results"], step["results"])
        say(f"=== {step['name']}: {result} ({step['state_string']})")
        text = api.step_log(build["buildid"], step["number"])
        if text:
            say(text.rstrip("\n"))

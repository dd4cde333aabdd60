"""When builds happen: new commits, every night, and force buttons."""

from __future__ import annotations

from buildbot.plugins import changes, schedulers, util
from twisted.internet import defer

from rustfarm.farmfile import Farm, Project

from .builders import builder_name
from .paths import MasterPaths


def scheduler_id(text: str) -> str:
    """Scheduler names appear in URLs: keep them to identifier characters."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


class TargetsForceScheduler(schedulers.ForceScheduler):
    """A project's force form: builds the targets ticked in its form, from any page."""

    def __init__(self, *, target_builders: dict[str, str], **kwargs):
        super().__init__(**kwargs)
        self.target_builders = target_builders

    @defer.inlineCallbacks
    def force(self, owner, builderNames=None, builderid=None, **kwargs):
        chosen = kwargs.get("targets") or list(self.target_builders)
        if isinstance(chosen, str):
            chosen = [chosen]
        unknown = [t for t in chosen if t not in self.target_builders]
        if unknown:
            raise KeyError(f"unknown targets for this project: {', '.join(unknown)}")
        names = [self.target_builders[t] for t in chosen]
        result = yield super().force(owner, builderNames=names, **kwargs)
        return result


def _source_parameter(project: Project) -> util.CodebaseParameter:
    return util.CodebaseParameter(
        "",
        label="Source",
        branch=util.StringParameter(name="branch", label="Branch",
                                    default=project.branches[0], size=30),
        revision=util.StringParameter(name="revision", label="Revision (empty: branch head)",
                                      default="", size=45),
        repository=util.FixedParameter(name="repository", default=project.source),
        project=util.FixedParameter(name="project", default=project.name),
    )


def _profile_parameter(project: Project) -> util.ChoiceStringParameter:
    choices = sorted({"release", "dev", project.profile})
    return util.ChoiceStringParameter(name="profile", label="Cargo profile", choices=choices,
                                      default=project.profile, strict=False)


def force_schedulers(farm: Farm) -> list:
    result = []
    for project in farm.projects.values():
        target_builders = {t: builder_name(project.name, t) for t in project.targets}
        result.append(TargetsForceScheduler(
            name=scheduler_id(f"force-{project.name}"),
            buttonName=f"Build {project.name} for chosen targets",
            label=f"Build {project.name}",
            builderNames=list(target_builders.values()),
            target_builders=target_builders,
            codebases=[_source_parameter(project)],
            properties=[
                util.ChoiceStringParameter(name="targets", label="Targets",
                                           choices=list(project.targets),
                                           default=list(project.targets), multiple=True),
                _profile_parameter(project),
            ]))
        for triple, builder in target_builders.items():
            result.append(schedulers.ForceScheduler(
                name=scheduler_id(f"force-{project.name}-{triple}"),
                buttonName="Force build",
                label=f"Build {project.name} for {triple}",
                builderNames=[builder],
                codebases=[_source_parameter(project)],
                properties=[_profile_parameter(project)]))
    return result


def commit_schedulers(farm: Farm) -> list:
    result = []
    for project in farm.projects.values():
        if not project.polls:
            continue
        result.append(schedulers.AnyBranchScheduler(
            name=scheduler_id(f"commits-{project.name}"),
            change_filter=util.ChangeFilter(project=project.name,
                                            branch=list(project.branches)),
            treeStableTimer=None,
            builderNames=[builder_name(project.name, t) for t in project.targets]))
    return result


def nightly_schedulers(farm: Farm) -> list:
    if farm.schedule.nightly is None:
        return []
    hour, minute = farm.schedule.nightly
    return [schedulers.Nightly(
                name=scheduler_id(f"nightly-{project.name}"),
                builderNames=[builder_name(project.name, t) for t in project.targets],
                codebases={"": {"repository": project.source,
                                "branch": project.branches[0]}},
                hour=hour, minute=minute, onlyIfChanged=False)
            for project in farm.projects.values()]


def change_sources(farm: Farm, paths: MasterPaths) -> list:
    return [changes.GitPoller(
                repourl=project.source,
                project=project.name,
                branches=list(project.branches),
                pollInterval=project.poll_interval,
                pollAtLaunch=True,
                workdir=str(paths.sources / f"{project.name}.poller"))
            for project in farm.projects.values() if project.polls]


def all_schedulers(farm: Farm) -> list:
    return force_schedulers(farm) + commit_schedulers(farm) + nightly_schedulers(farm)

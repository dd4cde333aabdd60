"""When builds happen: new commits, every night, and force buttons."""

from __future__ import annotations

from buildbot.plugins import schedulers, util
from buildbot.schedulers.forcesched import CollectedValidationError, ValidationError
from twisted.internet import defer, threads
from twisted.python import log

from rustfarm.farmfile import Farm, Project
from rustfarm.names import RELEASE_PROPERTY, RELEASE_WORKERS_PROPERTY, REPRODUCE_PROPERTY, \
    VERIFY_SCHEDULER_SOURCE, builder_name, project_force_scheduler, project_verify_scheduler, \
    scheduler_id
from rustfarm.farmfile.model import COMPILE_PROJECT
from rustfarm.state import StateDir

from .artifact_places import ArtifactPlaces
from .compile_jobs import SCHEDULER_NAME, CompileScheduler
from .pollers import HeadsFirstGitPoller
from .release_workers import recorded_workers


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
        # Buildbot's REST API answers a CollectedValidationError with 400 and its text.
        if not isinstance(chosen, list) or not all(isinstance(t, str) for t in chosen):
            raise CollectedValidationError({"targets": "must be a list of target triples"})
        unknown = [t for t in chosen if t not in self.target_builders]
        if unknown:
            raise CollectedValidationError({"targets": (
                f"unknown targets for this project: {', '.join(unknown)} "
                f"(targets: {', '.join(self.target_builders)})")})
        names = [self.target_builders[t] for t in chosen]
        result = yield super().force(owner, builderNames=names, **kwargs)
        return result


class VerifyScheduler(TargetsForceScheduler):
    """A project's verify form: rebuilds of a release, whose request names the worker
    that built each target's release (its provenance says), so that each builder
    rebuilds it on another (workers/rebuild_choice.py)."""

    def __init__(self, *, places: ArtifactPlaces, project: str, **kwargs):
        super().__init__(**kwargs)
        self.places = places
        self.project = project

    @defer.inlineCallbacks
    def addBuildsetForSourceStampsWithDefaults(self, reason, sourcestamps=None,
                                               properties=None, builderNames=None, **kwargs):
        revision = (properties.getProperty(RELEASE_PROPERTY) if properties else None) or \
            next((s.get("revision") for s in sourcestamps or [] if s.get("revision")), None)
        triples = {name: t for t, name in self.target_builders.items()
                   if name in (builderNames or [])}
        workers = {}
        if revision and properties is not None:
            try:
                workers = yield threads.deferToThread(recorded_workers, self.places,
                                                      self.project, str(revision), triples)
            except Exception as err:       # the store: a rebuild then goes to any worker
                log.msg(f"{self.name}: which workers built {self.project} {revision} is "
                        f"not known ({err})")
            properties.setProperty(RELEASE_WORKERS_PROPERTY, workers, VERIFY_SCHEDULER_SOURCE)
        return (yield super().addBuildsetForSourceStampsWithDefaults(
            reason, sourcestamps=sourcestamps, properties=properties,
            builderNames=builderNames, **kwargs))


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


class ProfileParameter(util.ChoiceStringParameter):
    """The cargo profile: only one the form offers, since it goes on cargo's command line."""

    debug = False   # a client's mistake: no traceback in the master's log

    def parse_from_arg(self, s):
        if s not in self.choices:
            raise ValidationError(f"cargo profile '{s}' is not offered for this project "
                                  f"(profiles: {', '.join(self.choices)})")
        return s


def _targets_parameter(project: Project) -> util.ChoiceStringParameter:
    return util.ChoiceStringParameter(name="targets", label="Targets",
                                      choices=list(project.targets),
                                      default=list(project.targets), multiple=True)


def _profile_parameter(project: Project) -> util.ChoiceStringParameter:
    return ProfileParameter(name="profile", label="Cargo profile", choices=list(project.profiles),
                            default=project.profile)


class BuilderForceScheduler(schedulers.ForceScheduler):
    """A project's "Force build" button, on every builder page of the project.

    The web UI sends the page's builderid, so the build is that builder's only;
    one scheduler per project serves all its builder pages (one per builder made
    /api/v2/forceschedulers 6.5 MB for 1,100 builders, and each was a scheduler to
    start). Without a builderid (a REST client) it builds every target of the
    project, as Buildbot's ForceScheduler does."""

    def __init__(self, *, project: str, **kwargs):
        super().__init__(**kwargs)
        self.project = project

    @defer.inlineCallbacks
    def computeBuilderNames(self, builderNames=None, builderid=None):
        if builderNames is not None or builderid is None:
            return (yield super().computeBuilderNames(builderNames, builderid))
        # Buildbot would take any builder's id; only this project's are offered here.
        builder = yield self.master.data.get(("builders", str(builderid)))
        if builder is None or builder["name"] not in self.builderNames:
            raise CollectedValidationError({"builderid": (
                f"builder {builderid} is not one of project {self.project}'s builders")})
        return [builder["name"]]


def force_schedulers(farm: Farm, places: ArtifactPlaces) -> list:
    result = []
    for project in farm.projects.values():
        target_builders = {t: builder_name(project.name, t) for t in project.targets}
        result.append(TargetsForceScheduler(
            name=project_force_scheduler(project.name),
            buttonName=f"Build {project.name} for chosen targets",
            label=f"Build {project.name}",
            builderNames=list(target_builders.values()),
            target_builders=target_builders,
            codebases=[_source_parameter(project)],
            properties=[_targets_parameter(project), _profile_parameter(project)]))
        result.append(VerifyScheduler(
            places=places, project=project.name,
            name=project_verify_scheduler(project.name),
            buttonName=f"Check that a release of {project.name} reproduces",
            label=f"Rebuild a release of {project.name} on another worker: no compile "
                  "cache, a volume of its own; its binaries must be the release's, byte "
                  "for byte",
            builderNames=list(target_builders.values()),
            target_builders=target_builders,
            codebases=[_source_parameter(project)],
            properties=[_targets_parameter(project),
                        util.StringParameter(name=RELEASE_PROPERTY, default="", size=15,
                                             label="Release (empty: the revision's)"),
                        util.FixedParameter(name=REPRODUCE_PROPERTY, default=True)]))
        # A one-target project's dialog can name the target; otherwise it is the page's.
        which = project.targets[0] if len(project.targets) == 1 else "this target"
        result.append(BuilderForceScheduler(
            project=project.name,
            name=builder_force_scheduler_name(project.name),
            buttonName="Force build",
            label=f"Build {project.name} for {which}",
            builderNames=list(target_builders.values()),
            codebases=[_source_parameter(project)],
            properties=[_profile_parameter(project)]))
    return result


def builder_force_scheduler_name(project: str) -> str:
    return scheduler_id(f"force-{project}-builder")


class OncePerRevisionScheduler(schedulers.AnyBranchScheduler):
    """A project's new commits, built once each: a push reaches the farm both as a forge's
    webhook and through the git poller, as two changes of the same revision; the second
    is dropped. The revisions seen are kept per branch (the newest ``KEEP``), in the
    scheduler's state, so a restart does not forget them."""

    KEEP = 200
    _seen: dict[str, list[str]]     # branch -> revisions, read as it activates

    @defer.inlineCallbacks
    def activate(self):
        # Before changes are consumed: every change is checked against these.
        self._seen = yield self.getState("seen_revisions", {})
        yield super().activate()

    @defer.inlineCallbacks
    def gotChange(self, change, important):
        if change.revision:
            seen = self._seen.setdefault(change.branch or "", [])
            if change.revision in seen:
                log.msg(f"{self.name}: {change.branch} {change.revision[:12]} came before; "
                        f"change {change.number} is not built again")
                return
            seen.append(change.revision)
            del seen[:-self.KEEP]
            yield self.setState("seen_revisions", self._seen)
        yield super().gotChange(change, important)


def commit_schedulers(farm: Farm) -> list:
    result = []
    for project in farm.projects.values():
        if not project.watched:
            continue
        result.append(OncePerRevisionScheduler(
            name=scheduler_id(f"commits-{project.name}"),
            # A pull request's head is its own scheduler's (master/pull_requests.py).
            change_filter=util.ChangeFilter(project=project.name,
                                            branch=list(project.branches),
                                            category_not_eq="pull"),
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


def change_sources(farm: Farm, paths: StateDir) -> list:
    return [HeadsFirstGitPoller(
                repourl=project.source,
                project=project.name,
                branches=list(project.branches),
                pollInterval=project.poll_interval,
                pollAtLaunch=True,
                # The snapshot step's mirror (master/snapshots.py): one clone per project.
                workdir=str(paths.sources / f"{project.name}.git"))
            for project in farm.projects.values() if project.polls]


def upload_schedulers(farm: Farm) -> list:
    """The one scheduler uploads are built through (master/compile_jobs.py)."""
    if not farm.compile.targets:
        return []
    return [CompileScheduler(name=SCHEDULER_NAME,
                             builderNames=[builder_name(COMPILE_PROJECT, t)
                                           for t in farm.compile.targets])]


def all_schedulers(farm: Farm, paths: StateDir) -> list:
    return (force_schedulers(farm, ArtifactPlaces(farm.artifacts, paths))
            + commit_schedulers(farm) + nightly_schedulers(farm) + upload_schedulers(farm))

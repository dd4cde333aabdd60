"""farm.yaml's projects section: each project's source, targets, toolchain and builds,
read by FarmReader (loader.py)."""

from __future__ import annotations

import re

from .checks import CONTAINER_POOLS, email_check, forge_repository_check, name_check, url_check
from .errors import did_you_mean
from .forge_settings import (DEFAULT_PR_LABEL, FORGE_API_URLS, FORGE_KINDS, CheckRuns, Forge,
                             ProjectNotify, PullRequests)
from .model import Project, Target
from .pool_kinds import Pool
from .reader import Section

# The packages a release can hold besides its archive (rustfarm/device_packages.py).
PACKAGE_KINDS = ("deb", "ipk")


class ProjectSections:
    def projects(self, top: Section, targets: dict[str, Target], pools: dict[str, Pool],
                 default_toolchain: str) -> dict[str, Project]:
        projects: dict[str, Project] = {}
        for name, node, line in top.children("projects"):
            path = f"projects.{name}"
            s = self.section(node, path, ("source", "subdir", "branches", "poll_interval",
                                          "targets", "profile", "features", "test",
                                          "binaries", "toolchain", "strip", "auditable",
                                          "fetch_timeout",
                                          "packages", "service", "maintainer",
                                          "forge", "notify"),
                             line)
            source = s.text("source")
            if source is not None:
                source = self.resolve_source(s, source)
            wanted = s.texts("targets", tuple(targets))
            for index, triple in enumerate(wanted):
                if triple not in targets:
                    s.error(s.item_line("targets", index), f"{path}.targets[{index}]",
                            f"target '{triple}' is not defined under targets"
                            f"{did_you_mean(triple, targets)}")
            profile = s.text("profile", "release", check=name_check)
            toolchain = self.toolchain(s, "toolchain", default_toolchain)
            chosen = tuple(t for t in wanted if t in targets)
            self.check_toolchain_images(s, name, toolchain, [targets[t] for t in chosen], pools)
            binaries = s.texts("binaries", ())
            for index, binary in enumerate(binaries):
                if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", binary):
                    s.error(s.item_line("binaries", index) if s.has("binaries") else line,
                            f"{path}.binaries[{index}]",
                            f"'{binary}' is not a binary name: letters, digits, '_', '-' and "
                            "'.', no paths")
            packages = s.texts("packages", ("deb", "ipk"))
            for index, kind in enumerate(packages):
                if kind not in PACKAGE_KINDS:
                    s.error(s.item_line("packages", index), f"{path}.packages[{index}]",
                            f"'{kind}' is not a package kind: {', '.join(PACKAGE_KINDS)}")
            service = s.text("service", "") or ""
            if "\n" in service or (service and not re.match(r"^[A-Za-z0-9_/.-]+( |$)", service)):
                s.error(s.key_line("service"), f"{path}.service",
                        "one command line, starting with a binary the project ships (run "
                        "from /usr/bin) or an absolute path")
            auditable = s.flag("auditable", False)
            on_host = sorted({pools[targets[t].pool].name for t in chosen
                              if targets[t].pool in pools
                              and pools[targets[t].pool].kind == "local"})
            if auditable and on_host:
                s.error(s.key_line("auditable"), f"{path}.auditable",
                        "cargo-auditable comes with the farm's images, and pool "
                        f"'{on_host[0]}' builds on the machine itself, without one: build "
                        "this project's targets on docker or ec2 pools")
            projects[name] = Project(
                name=name,
                source=source or "",
                subdir=s.text("subdir", "").strip("/"),
                branches=s.texts("branches", ("main",)) or ("main",),
                poll_interval=s.integer("poll_interval", 60, minimum=0),
                targets=chosen,
                profile=profile,
                features=s.texts("features", ()),
                test=s.flag("test", True),
                binaries=binaries,
                toolchain=toolchain,
                toolchain_pinned=s.has("toolchain"),
                strip=s.flag("strip", True),
                auditable=auditable,
                fetch_timeout=s.integer("fetch_timeout", 600, minimum=1),
                packages=packages, service=service,
                maintainer=s.text("maintainer", "") or "",
                forge=self.forge(s, name),
                notify=self.project_notify(s, name),
            )
        if not top.has("projects"):
            top.error(1, "projects", "missing required key")
        return projects

    def forge(self, s: Section, project: str) -> Forge | None:
        """Where the project's pushes come from and its statuses go."""
        if not s.has("forge"):
            return None
        f = self.section(s.raw("forge"), f"projects.{project}.forge",
                         ("kind", "repository", "api_url", "statuses", "pull_requests",
                          "checks"),
                         s.key_line("forge"))
        kind = f.text("kind")
        if kind is not None and kind not in FORGE_KINDS:
            f.error(f.key_line("kind"), f.key_path("kind"),
                    f"unknown forge '{kind}'{did_you_mean(kind, FORGE_KINDS)} "
                    f"(forges: {', '.join(FORGE_KINDS)})")
            kind = None
        repository = f.text("repository")
        if isinstance(repository, str):
            problem = forge_repository_check(repository, subgroups=kind == "gitlab")
            if problem:
                f.error(f.key_line("repository"), f.key_path("repository"), problem)
                repository = None
        if f.has("api_url"):
            api_url = f.text("api_url", check=url_check)
        else:
            api_url = FORGE_API_URLS.get(kind or "", "")
            if kind == "gitea":
                f.error(f.line, f.key_path("api_url"),
                        "missing required key: Gitea is self-hosted, give its address "
                        "(e.g. https://gitea.example.com)")
        statuses = f.flag("statuses", True)
        pull_requests = self.pull_requests(f)
        checks = self.check_runs(f, kind)
        if not kind or not repository or not isinstance(api_url, str):
            return None
        return Forge(kind=kind, repository=repository, api_url=api_url.rstrip("/"),
                     statuses=bool(statuses), pull_requests=pull_requests, checks=checks)

    def check_runs(self, f: Section, kind: str | None) -> CheckRuns | None:
        """The GitHub App check runs are made as, if any."""
        if not f.has("checks"):
            return None
        if kind and kind != "github":
            f.error(f.key_line("checks"), f.key_path("checks"),
                    f"check runs are GitHub's; {kind} has commit statuses only")
            return None
        if not isinstance(f.raw("checks"), dict):
            f.error(f.key_line("checks"), f.key_path("checks"),
                    "the GitHub App check runs are made as: {app_id: N}, and optionally "
                    "installation_id")
            return None
        c = self.section(f.raw("checks"), f.key_path("checks"), ("app_id", "installation_id"),
                         f.key_line("checks"))
        app_id = c.integer("app_id", minimum=1, why="the App's id, on its settings page")
        installation = c.integer("installation_id", 0, minimum=1,
                                 why="the number at the end of the installation's settings "
                                 "URL; leave it out to have it looked up")
        if not isinstance(app_id, int):
            return None
        return CheckRuns(app_id=app_id, installation_id=installation or 0)

    def pull_requests(self, f: Section) -> PullRequests | None:
        """``pull_requests: false``, or which forks' requests are built."""
        if not f.has("pull_requests"):
            return PullRequests()
        if f.raw("pull_requests") in (False, True):
            return PullRequests() if f.raw("pull_requests") else None
        p = self.section(f.raw("pull_requests"), f.key_path("pull_requests"),
                         ("label", "authors", "comment"), f.key_line("pull_requests"))
        label = p.text("label", DEFAULT_PR_LABEL)
        if isinstance(label, str) and not label.strip():
            p.error(p.key_line("label"), p.key_path("label"),
                    "a label's name, which a maintainer adds to a fork's request to build it")
        return PullRequests(label=label or DEFAULT_PR_LABEL, authors=p.texts("authors", ()),
                            comment=bool(p.flag("comment", True)))

    def project_notify(self, s: Section, project: str) -> ProjectNotify:
        """Who hears of the project's builds."""
        if not s.has("notify"):
            return ProjectNotify()
        n = self.section(s.raw("notify"), f"projects.{project}.notify", ("email", "webhook"),
                         s.key_line("notify"))
        addresses = n.texts("email", ())
        for index, address in enumerate(addresses):
            problem = email_check(address)
            if problem:
                n.error(n.item_line("email", index), f"{n.path}.email[{index}]", problem)
        webhook = n.text("webhook", "", check=url_check)
        return ProjectNotify(email=tuple(a for a in addresses if not email_check(a)),
                             webhook=webhook or "")

    def check_toolchain_images(self, s: Section, project: str, toolchain: str,
                               targets: list[Target], pools: dict[str, Pool]) -> None:
        """Every container target of the project has a std and an image for its toolchain."""
        line = s.key_line("toolchain") if s.has("toolchain") else s.line
        for target in targets:
            pool = pools.get(target.pool)
            if pool is None or pool.kind not in CONTAINER_POOLS:
                continue
            spec = self.table.targets.get(target.triple)
            if spec is not None and toolchain not in spec.toolchains:
                s.error(line, f"projects.{project}.toolchain",
                        f"toolchain {toolchain} cannot build {target.triple}: it has no std for "
                        f"it (toolchains that can: {', '.join(spec.toolchains)})")
            elif not target.image_for(toolchain) and target.images:
                target_section, target_line = self.target_lines[target.triple]
                pinned = ", ".join(target.images.values())
                target_section.error(
                    target_section.key_line("image"), f"targets.{target.triple}.image",
                    f"no image for toolchain {toolchain}, which project '{project}' builds "
                    f"with (pinned: {pinned}); add rustfarm/{target.triple}:{toolchain}-... "
                    f"(`farm images build --target {target.triple} --toolchain {toolchain}`"
                    " then `farm images pin`)")

    def resolve_source(self, s: Section, source: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*://", source) or source.startswith("git@"):
            return source
        local = (self.base / source).resolve()
        if not local.exists():
            s.error(s.key_line("source"), f"{s.path}.source",
                    f"no such directory: {local} (give a git URL, a file:// URL or a local path)")
        return str(local)

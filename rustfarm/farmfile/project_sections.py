"""farm.yaml's projects section: each project's source, targets, toolchain and builds,
read by FarmReader (loader.py)."""

from __future__ import annotations

import re

from .checks import CONTAINER_POOLS, name_check
from .errors import did_you_mean
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
                                          "binaries", "toolchain", "strip", "fetch_timeout",
                                          "packages", "service", "maintainer"),
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
                fetch_timeout=s.integer("fetch_timeout", 600, minimum=1),
                packages=packages, service=service,
                maintainer=s.text("maintainer", "") or "",
            )
        if not top.has("projects"):
            top.error(1, "projects", "missing required key")
        return projects

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

"""Dockerfiles as the recipes use them: the templates filled with targets.yaml's rows,
and the build-context files their COPY and ADD lines read."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from rustfarm.targets import TargetSpec, TargetTable

from .wheels import WheelPin, read_pins


def copied_sources(dockerfile: str) -> list[str]:
    """Sources of the COPY and ADD lines that read the build context."""
    joined = dockerfile.replace("\\\n", " ")
    sources = []
    for line in joined.splitlines():
        words = line.strip().split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        if rest.startswith("["):
            args = json.loads(rest)
        else:
            args = shlex.split(rest)
        flags = [a for a in args if a.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        paths = [a for a in args if not a.startswith("--")]
        sources.extend(paths[:-1])
    return sources

def copied_pins(dockerfile: str, root: Path) -> tuple[WheelPin, ...]:
    """The wheels a Dockerfile installs: the pins of each requirements file it copies."""
    return tuple(pin for source in copied_sources(dockerfile)
                 if source.endswith("requirements.txt")
                 for pin in read_pins(root / source))

def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def render_toolchain_dockerfile(template: str, table: TargetTable, version: str) -> str:
    toolchain = table.toolchain(version)
    return _fill(template, {"TOOLCHAIN": version,
                            "TOOLCHAIN_PACKAGES": " ".join(toolchain.packages),
                            "STD_SOURCE": toolchain.std_source or ""})


def render_target_dockerfile(template: str, target: TargetSpec, version: str,
                             tools_image: str) -> str:
    """A target image's Dockerfile: the template plus its row's values, its audit
    tools built by ``tools_image`` (the default toolchain's image)."""
    std = target.std_for(version)
    install = []
    if target.zig:
        install += ["--zig", shlex.quote(target.zig)]
    if std == "source":
        install.append("--build-std")
    install.append(target.triple)
    install += list(target.packages)
    if isinstance(std, tuple):
        install += list(std)
    env = " \\\n    ".join(f"{key}={shlex.quote(value)}"
                            for key, value in target.image_environment(version).items())
    return _fill(template, {"TRIPLE": target.triple, "TOOLCHAIN": version,
                            "TOOLS_IMAGE": tools_image,
                            "INSTALL_ARGS": " ".join(install), "ENV": env,
                            "CHECK_ARGS": f"{target.triple} {'run' if target.runs_here else 'build'}"})

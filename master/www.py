"""The web UI: anonymous users read, logged-in users force, stop and rebuild."""

from __future__ import annotations

import dataclasses

from buildbot.plugins import util

from rustfarm.farmfile import Farm
from rustfarm.state import StateDir

from .auth import SecretPasswordAuth
from .forge_hooks import hook_dialects

CONTROL_ROLE = "builders"


def www_config(farm: Farm, paths: StateDir) -> dict:
    s3 = farm.artifacts.s3
    config = {
        "port": f"tcp:{farm.www.port}:interface={farm.www.host}",
        "plugins": {"artifacts": {
            "directory": str(paths.artifacts),
            "keys": str(paths.release_keys),
            "state_dir": str(paths.root),
            "s3": dataclasses.asdict(s3) if s3 else None,
            "projects": {name: list(project.targets)
                         for name, project in farm.projects.items()}},
            "compile": {"url": f"{farm.farm.url}plugins/compile/",
                        "users": list(farm.www.users)},
            "matrix": {
                "url": farm.farm.url,
                "projects": {name: list(project.targets)
                             for name, project in farm.projects.items()},
                "targets": {triple: {"arch": target.arch, "pool": target.pool}
                            for triple, target in farm.targets.items()}}},
        "authz": authz(farm),
        # /change_hook/github, gitlab, gitea: pushes of the projects with a forge.
        "change_hook_dialects": hook_dialects(farm, paths),
    }
    if farm.www.users:
        config["auth"] = SecretPasswordAuth(farm.www.users)
    return config


def authz(farm: Farm) -> util.Authz:
    return util.Authz(
        allowRules=[util.AnyControlEndpointMatcher(role=CONTROL_ROLE)],
        roleMatchers=[util.RolesFromUsername(roles=[CONTROL_ROLE],
                                             usernames=list(farm.www.users))])

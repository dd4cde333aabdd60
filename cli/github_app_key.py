"""`farm github-app-key PROJECT`: the private key of the GitHub App a project's check
runs are made as, read on standard input and kept in the farm's secret store."""

from __future__ import annotations

import sys

from rustfarm.errors import FarmError
from rustfarm.farmfile import load
from rustfarm.progress import say

from .commands import forge_project


def _rsa_key_problem(pem: str) -> str:
    """What is wrong with ``pem`` as a GitHub App's key ("" if nothing): GitHub gives an
    RSA key in PEM."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return "not a private key in PEM without a passphrase"
    if not isinstance(key, rsa.RSAPrivateKey):
        return "not an RSA key (GitHub Apps sign with RSA)"
    return ""


def cmd_github_app_key(args) -> int:
    """The App's key goes to the secret store only: the master's check-run reporter
    signs with it; no build, property or log sees it."""
    from rustfarm.farmfile.forge_settings import github_app_key_name
    from rustfarm.state import SecretStore, StateDir
    farm = load(args.config)
    project = forge_project(farm, args.project)
    if project.forge.checks is None:
        raise FarmError(f"project '{project.name}' has no forge.checks in {farm.path.name} "
                        "(add checks: {app_id: N}, see docs/forges.md); nothing changed")
    if sys.stdin.isatty():
        say("paste the App's private key (.pem), then Ctrl-D:")
    pem = sys.stdin.read().strip()
    if not pem:
        raise FarmError("no key given; nothing changed")
    problem = _rsa_key_problem(pem)
    if problem:
        raise FarmError(f"standard input is {problem}; give the .pem GitHub made for App "
                        f"{project.forge.checks.app_id}; nothing changed")
    state = StateDir.of(farm)
    state.create()
    store = SecretStore(state.secrets)
    store.write(github_app_key_name(project.name), pem + "\n")
    say(f"stored the key of GitHub App {project.forge.checks.app_id} for '{project.name}' in "
        f"{store.path(github_app_key_name(project.name))} (a running master uses it after "
        "`farm reload`)")
    return 0

"""What each `farm` subcommand does: check, up, reload, down, status, build, logs, compile,
token, passwd, registry-token, db-password, builders, targets, images (key and verify are
release_commands.py's)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from rustfarm.errors import FarmError
from rustfarm.farmfile import Farm, FarmFileError, known_triples, load
from rustfarm.progress import plural, say, warn

DEFAULT_CONFIG = Path("farm.yaml")


def _load(args) -> Farm:
    return load(args.config)


def _warn_about(farm: Farm) -> None:
    """What farm.yaml may say but should not (a password in db.url)."""
    for warning in farm.db.warnings:
        warn(f"warning: {warning}")


def _check_listed_user(farm: Farm, user: str) -> None:
    """Tokens and UI passwords are for the users www.users lists."""
    if user not in farm.www.users:
        raise FarmError(f"'{user}' is not listed in www.users of {farm.path.name} "
                        f"(users: {', '.join(farm.www.users) or 'none'})")


def _check_stored_secrets(farm: Farm) -> None:
    """A registry that needs a token, without one in the secret store, would fail every
    build that takes a crate from it; a forge's statuses without its token, or check runs
    without their App's key, would fail at every build: refused now."""
    from rustfarm.farmfile.forge_settings import forge_token_name, github_app_key_name
    from rustfarm.state import SecretStore, StateDir
    store = SecretStore(StateDir.of(farm).secrets)
    for project in farm.projects.values():
        if project.forge and project.forge.checks and \
                not store.read(github_app_key_name(project.name)):
            raise FarmError(f"{farm.path.name}: projects.{project.name}.forge.checks: the farm "
                            f"has no private key of GitHub App {project.forge.checks.app_id}; "
                            f"store it with `farm github-app-key {project.name} < app.pem`")
        if project.forge and project.forge.needs_token and \
                not store.read(forge_token_name(project.name)):
            raise FarmError(f"{farm.path.name}: projects.{project.name}.forge: the farm has no "
                            f"token for {project.forge.kind} to post commit statuses and "
                            f"pull requests' comments with; store it with `farm forge-token "
                            f"{project.name}` (it reads the token on its standard input), or "
                            "set statuses: false and pull_requests.comment: false")
    for registry in farm.crates.registries:
        if registry.token and not store.read(registry.secret_name):
            raise FarmError(f"{farm.path.name}: crates.registries.{registry.name}.token: the "
                            f"farm has no token for registry '{registry.name}'; store it with "
                            f"`farm registry-token {registry.name}` (it reads the token on "
                            "its standard input)")


def _load_checked(args) -> Farm:
    """farm.yaml, refused for everything `farm check` refuses: `farm up` and `farm reload`
    start or change nothing for a file `farm check` would refuse, and say the same lines."""
    from rustfarm.builder_defs import builder_defs
    farm = _load(args)
    builder_defs(farm)          # a pool too small for its builders is refused now
    _check_stored_secrets(farm)
    _warn_about(farm)
    return farm


def cmd_check(args) -> int:
    farm = _load_checked(args)
    pools = ", ".join(f"{p.name} ({p.kind})" for p in farm.pools.values())
    builders = sum(len(p.targets) for p in farm.projects.values())
    say(f"{args.config}: fine: {plural(len(farm.projects), 'project')}, "
        f"{plural(len(farm.targets), 'target')}, "
        f"{builders} builders, pools: {pools or 'none'}")
    return 0


def cmd_up(args) -> int:
    from .lifecycle import Farmhouse
    farm = _load_checked(args)
    ready = Farmhouse(farm).up(wait=args.wait_timeout, build_images=not args.no_images)
    return 0 if ready else 1


def cmd_down(args) -> int:
    from .lifecycle import Farmhouse
    from .processes import stop_processes
    try:
        farm = _load(args)
    except FarmFileError as err:
        # An edit gone wrong must not keep a farm from stopping: its state is where
        # farm.yaml's default puts it.
        from rustfarm.farmfile.checks import DEFAULT_STATE_DIR
        from rustfarm.state import StateDir
        for problem in err.problems:
            warn(str(problem))
        state = StateDir(Path(args.config).resolve().parent / DEFAULT_STATE_DIR)
        from .postgres import stop_local_server
        if state.root.is_dir() and (stop_processes(state, args.timeout)
                                    | stop_local_server(state)):
            warn(f"{args.config} has the problems above: stopped the farm's processes in "
                 f"{state.root} (its containers go at the next `farm up`)")
        return 2
    Farmhouse(farm).down(wait=args.wait, timeout=args.timeout)
    return 0


def cmd_status(args) -> int:
    from .farm_status import status
    from .lifecycle import Farmhouse
    return 0 if status(Farmhouse(_load(args))) else 3


def cmd_build(args) -> int:
    from .api import FarmApi
    from .build_command import follow, force
    farm = _load(args)
    api = FarmApi.for_farm(farm)
    requests = force(farm, api, args.project, args.target or [], args.branch, args.revision,
                     args.profile)
    for request in requests:
        say(f"requested {request.builder} (build request {request.brid})")
    if not args.wait:
        say(f"follow the builds at {farm.farm.url}")
        return 0
    return 0 if follow(farm, api, requests, args.timeout) else 1


def cmd_logs(args) -> int:
    from .api import FarmApi
    from .logs_command import show_logs
    farm = _load(args)
    api = FarmApi.for_farm(farm)
    if not api.answers():
        raise FarmError(f"the farm is not running at {api.base} (start it with `farm up`)")
    show_logs(farm, api, args.project, args.target, args.build, args.step)
    return 0


def cmd_reload(args) -> int:
    from .lifecycle import Farmhouse
    farm = _load_checked(args)
    return 0 if Farmhouse(farm).reload(timeout=args.timeout) else 1


def cmd_token(args) -> int:
    import secrets

    from rustfarm.state import SecretStore, StateDir, token_secret_name
    farm = _load(args)
    _check_listed_user(farm, args.user)
    state = StateDir.of(farm)
    state.create()
    store = SecretStore(state.secrets)
    existing = store.read(token_secret_name(args.user))
    if existing and not args.new:
        say(existing)
        return 0
    token = secrets.token_urlsafe(32)
    store.write(token_secret_name(args.user), token)
    say(token)
    warn(f"{'replaced' if existing else 'made'} the compile token of '{args.user}' "
         f"(kept in {store.path(token_secret_name(args.user))})")
    return 0


def cmd_compile(args) -> int:
    from .compile_command import compile_project
    farm = _load(args)
    ok = compile_project(farm, Path(args.directory).resolve(), args.target or [],
                         Path(args.out), args.user, args.timeout)
    return 0 if ok else 1


def cmd_passwd(args) -> int:
    from rustfarm.state import SecretStore, StateDir, ui_secret_name
    farm = _load(args)
    _check_listed_user(farm, args.user)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"new web UI password for {args.user}: ")
        if password != getpass.getpass("again: "):
            raise FarmError("the passwords differ; nothing changed")
    if len(password) < 8:
        raise FarmError("a password needs at least 8 characters; nothing changed")
    state = StateDir.of(farm)
    state.create()
    SecretStore(state.secrets).write(ui_secret_name(args.user), password)
    say(f"password for '{args.user}' stored in {state.secrets} (a running master uses it "
        "from now on)")
    return 0


def _read_token(prompt: str) -> str:
    """A token from standard input (one line), or typed at ``prompt``; none refused."""
    token = (sys.stdin.readline() if not sys.stdin.isatty() else getpass.getpass(prompt)).strip()
    if not token:
        raise FarmError("no token given; nothing changed")
    return token


def cmd_registry_token(args) -> int:
    """A registry's token, kept in the secret store: only the farm's own cargo, which
    fetches crates on this machine, ever sees it."""
    from rustfarm.state import SecretStore, StateDir
    farm = _load(args)
    registry = next((r for r in farm.crates.registries if r.name == args.registry), None)
    if registry is None:
        names = ", ".join(r.name for r in farm.crates.registries) or "none"
        raise FarmError(f"no registry '{args.registry}' under crates.registries of "
                        f"{farm.path.name} (registries: {names})")
    token = _read_token(f"token of registry {registry.name}: ")
    state = StateDir.of(farm)
    state.create()
    store = SecretStore(state.secrets)
    store.write(registry.secret_name, token)
    say(f"stored the token of registry '{registry.name}' in "
        f"{store.path(registry.secret_name)}")
    return 0


def forge_project(farm: Farm, name: str):
    project = farm.projects.get(name)
    if project is None:
        from rustfarm.farmfile.errors import did_you_mean
        raise FarmError(f"no project '{name}' in {farm.path.name}{did_you_mean(name, farm.projects)}")
    if project.forge is None:
        raise FarmError(f"project '{name}' has no forge in {farm.path.name} (add "
                        "forge: {kind: github, repository: owner/name}, see docs/forges.md)")
    return project


def cmd_webhook_secret(args) -> int:
    """The secret a project's forge signs its webhooks with: made the first time."""
    from rustfarm.farmfile.forge_settings import webhook_secret_name
    from rustfarm.state import SecretStore, StateDir
    farm = _load(args)
    project = forge_project(farm, args.project)
    state = StateDir.of(farm)
    state.create()
    store = SecretStore(state.secrets)
    name = webhook_secret_name(project.name)
    if args.new or not store.read(name):
        store.write(name, _new_secret())
        warn(f"made the webhook secret of '{project.name}' (kept in {store.path(name)}); "
             f"give it to {project.forge.kind} with the webhook (docs/forges.md)")
    say(store.read(name))
    return 0


def _new_secret() -> str:
    import secrets
    return secrets.token_hex(32)


def cmd_forge_token(args) -> int:
    """A project's forge API token, kept in the secret store: only the master's status
    reporter uses it; no build, property or log sees it."""
    from rustfarm.farmfile.forge_settings import forge_token_name
    from rustfarm.state import SecretStore, StateDir
    farm = _load(args)
    project = forge_project(farm, args.project)
    token = _read_token(f"{project.forge.kind} token for {project.name}: ")
    state = StateDir.of(farm)
    state.create()
    store = SecretStore(state.secrets)
    store.write(forge_token_name(project.name), token)
    say(f"stored the {project.forge.kind} token of '{project.name}' in "
        f"{store.path(forge_token_name(project.name))} (a running master uses it after "
        "`farm reload`)")
    return 0


def cmd_db_password(args) -> int:
    """The password of a PostgreSQL server of one's own, kept in the secret store so that
    db.url (and farm.yaml) need not carry it."""
    from rustfarm.state import DB_PASSWORD_SECRET, SecretStore, StateDir
    farm = _load(args)
    if farm.db.runs_locally:
        raise FarmError("db.server is local: farm up made its password "
                        f"({StateDir.of(farm).secrets / DB_PASSWORD_SECRET}); nothing changed")
    if not farm.db.is_postgresql:
        raise FarmError(f"db.url of {farm.path.name} is not a PostgreSQL URL; nothing changed")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password of {farm.db.user or 'the database user'} "
                                   f"on {farm.db.host}: ")
    if not password:
        raise FarmError("an empty password; nothing changed")
    state = StateDir.of(farm)
    state.create()
    SecretStore(state.secrets).write(DB_PASSWORD_SECRET, password)
    say(f"database password stored in {state.secrets / DB_PASSWORD_SECRET} (masters use it "
        "from their next start)")
    if farm.db.has_password:
        warn(f"db.url of {farm.path.name} still carries a password, which wins: remove it")
    return 0


def cmd_builders(args) -> int:
    from rustfarm.builder_defs import builders_table
    sys.stdout.write(builders_table(_load(args)))
    return 0


def cmd_targets(args) -> int:
    if args.markdown:
        from rustfarm.targets import markdown_table
        say(markdown_table())
        return 0
    if args.known:
        for triple in sorted(known_triples()):
            say(triple)
        return 0
    farm = _load(args)
    for target in farm.targets.values():
        images = ", ".join(target.images.values()) or "-"
        say(f"{target.triple:40} pool={target.pool:10} image={images} "
            f"tests={'yes' if target.can_run else 'no'}")
    return 0


def cmd_images(args) -> int:
    if args.images_command == "recipes":          # what the recipes make: no farm needed
        return args.handler(args)
    if args.config == DEFAULT_CONFIG and not args.config.exists() \
            and args.images_command != "pin":
        # No farm here: every image of the default toolchain, on DOCKER_HOST's engine or
        # the local one.
        say(f"no {args.config}: working on every image of the default toolchain")
        args.config = None
        return args.handler(args, pins={}, docker_host=None)
    farm = _load(args)
    # DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH) names another engine of
    # the farm, e.g. to pull the images onto it; else the first docker pool's first.
    engine = None if os.environ.get("DOCKER_HOST") else farm.docker_engine()
    return args.handler(args, pins=farm.pinned_images(), docker_host=engine)

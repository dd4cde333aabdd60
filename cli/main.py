"""The `farm` command: check, up, reload, down, status, build, logs, compile, token, passwd,
db-password, registry-token, webhook-secret, forge-token, targets, images, key, verify."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

import argcomplete

from rustfarm.errors import FarmError
from rustfarm.farmfile import Farm, FarmFileError, known_triples, load
from rustfarm.progress import say, warn


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
    build that takes a crate from it; a forge's statuses without its token would fail at
    every build: refused now."""
    from rustfarm.farmfile.model import forge_token_name
    from rustfarm.state import SecretStore, StateDir
    store = SecretStore(StateDir.of(farm).secrets)
    for project in farm.projects.values():
        if project.forge and project.forge.statuses and \
                not store.read(forge_token_name(project.name)):
            raise FarmError(f"{farm.path.name}: projects.{project.name}.forge: the farm has no "
                            f"token for {project.forge.kind} to post commit statuses with; "
                            f"store it with `farm forge-token {project.name}` (it reads the "
                            "token on its standard input), or set statuses: false")
    for registry in farm.crates.registries:
        if registry.token and not store.read(registry.secret_name):
            raise FarmError(f"{farm.path.name}: crates.registries.{registry.name}.token: the "
                            f"farm has no token for registry '{registry.name}'; store it with "
                            f"`farm registry-token {registry.name}` (it reads the token on "
                            "its standard input)")


def cmd_check(args) -> int:
    from rustfarm.builder_defs import builder_defs
    farm = _load(args)
    builder_defs(farm)          # a pool too small for its builders is refused now
    _check_stored_secrets(farm)
    _warn_about(farm)
    pools = ", ".join(f"{p.name} ({p.kind})" for p in farm.pools.values())
    builders = sum(len(p.targets) for p in farm.projects.values())
    say(f"{args.config}: fine: {len(farm.projects)} projects, {len(farm.targets)} targets, "
        f"{builders} builders, pools: {pools or 'none'}")
    return 0


def cmd_up(args) -> int:
    from .lifecycle import Farmhouse
    farm = _load(args)
    _check_stored_secrets(farm)
    _warn_about(farm)
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
    farm = _load(args)
    _check_stored_secrets(farm)
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
    token = (sys.stdin.readline() if not sys.stdin.isatty()
             else getpass.getpass(f"token of registry {registry.name}: ")).strip()
    if not token:
        raise FarmError("no token given; nothing changed")
    state = StateDir.of(farm)
    state.create()
    store = SecretStore(state.secrets)
    store.write(registry.secret_name, token)
    say(f"stored the token of registry '{registry.name}' in "
        f"{store.path(registry.secret_name)}")
    return 0


def _forge_project(farm: Farm, name: str):
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
    from rustfarm.farmfile.model import webhook_secret_name
    from rustfarm.state import SecretStore, StateDir
    farm = _load(args)
    project = _forge_project(farm, args.project)
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
    from rustfarm.farmfile.model import forge_token_name
    from rustfarm.state import SecretStore, StateDir
    farm = _load(args)
    project = _forge_project(farm, args.project)
    token = (sys.stdin.readline() if not sys.stdin.isatty()
             else getpass.getpass(f"{project.forge.kind} token for {project.name}: ")).strip()
    if not token:
        raise FarmError("no token given; nothing changed")
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


EXAMPLES = {
    None: """examples:
  farm check                          validate ./farm.yaml, every problem with its line
  farm up                             start the farm (master, workers, missing images)
  farm build hello --wait             build every target of project hello and follow it
  farm logs hello --target mipsel-unknown-linux-musl --step "cargo build"
  farm reload                         apply an edited farm.yaml; running builds go on
  farm down --wait                    stop once running builds have finished
  farm images build --target mips-unknown-linux-musl
  farm images recipes mipsel-unknown-linux-musl   the Dockerfile it is built from

--config FILE may come before or after the command.""",
    "check": "example:\n  farm check --config other.yaml",
    "up": "examples:\n  farm up\n  farm up --no-images --wait-timeout 300",
    "reload": "example:\n  $EDITOR farm.yaml && farm reload",
    "down": "examples:\n  farm down\n  farm down --wait",
    "build": """examples:
  farm build hello
  farm build hello --target mipsel-unknown-linux-musl --target x86_64-unknown-linux-gnu --wait
  farm build hello --revision 1a2b3c4 --profile dev --wait""",
    "logs": """examples:
  farm logs hello --target mipsel-unknown-linux-musl
  farm logs hello --target mipsel-unknown-linux-musl --build 3 --step 'cargo build'""",
    "passwd": "examples:\n  farm passwd admin\n  echo 'a long password' | farm passwd admin "
              "--password-stdin",
    "registry-token": "example:\n  farm registry-token company < company-token.txt",
    "webhook-secret": "examples:\n  farm webhook-secret hello\n  farm webhook-secret hello --new",
    "forge-token": "example:\n  farm forge-token hello < github-token.txt",
    "targets": "examples:\n  farm targets\n  farm targets --known\n  farm targets --markdown",
    "builders": "example:\n  farm builders --config other.yaml",
    "compile": """examples:
  farm compile
  farm compile ../blinky --target mipsel-unknown-linux-musl --target aarch64-unknown-linux-musl
  RUSTFARM_TOKEN=... farm compile --config remote-farm.yaml --out dist""",
    "token": "examples:\n  farm token admin\n  farm token admin --new",
    "db-password": "examples:\n  farm db-password\n  pass show farm-db | farm db-password "
                   "--password-stdin",
}


def _command(sub, name: str, common: argparse.ArgumentParser, **kwargs):
    return sub.add_parser(name, parents=[common], epilog=EXAMPLES.get(name),
                          formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="farm", description="Run and use a rustfarm build farm.",
                                  epilog=EXAMPLES[None],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--config", default=DEFAULT_CONFIG, type=Path,
                     help="the farm file (default: ./farm.yaml)")
    # The same option after the command; given there, it wins.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, type=Path,
                        help="the farm file (default: ./farm.yaml)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _command(sub, "check", common, help="validate farm.yaml").set_defaults(func=cmd_check)
    up = _command(sub, "up", common, help="start the master and local workers (idempotent)")
    up.add_argument("--wait-timeout", type=float, default=120,
                    help="seconds to wait for the web UI and workers")
    up.add_argument("--no-images", action="store_true",
                    help="do not build missing worker images (farm images build does)")
    up.set_defaults(func=cmd_up)
    reload = _command(sub, "reload", common, help="apply an edited farm.yaml to the running farm",
                      description="Apply farm.yaml to the running master (Buildbot's"
                      " reconfiguration) and start any new local workers. Running builds go"
                      " on. An invalid file is refused with its problems and the running"
                      " configuration stays.")
    reload.add_argument("--timeout", type=float, default=300,
                        help="seconds to wait for the master to apply it")
    reload.set_defaults(func=cmd_reload)
    down = _command(sub, "down", common, help="stop what `farm up` started",
                    description="Stop the master, its local workers and its containers."
                    " Running builds are stopped and queued again for the next `farm up`;"
                    " with --wait they finish first. No new build starts either way.")
    down.add_argument("--wait", action="store_true",
                      help="let running builds finish before stopping")
    down.add_argument("--timeout", type=float, default=None,
                      help="seconds to wait for the master (default: 60; with --wait: for ever)")
    down.set_defaults(func=cmd_down)
    _command(sub, "status", common, help="show the master, workers and recent builds"
             ).set_defaults(func=cmd_status)

    build = _command(sub, "build", common, help="build a project now",
                     description="Force builds of a project. With --wait, follow them; for"
                     " each failed build print the failing step's errors (compiler errors"
                     " with their locations, failed tests with their panic messages).")
    build.add_argument("project")
    build.add_argument("--target", action="append", help="a target triple (repeatable; "
                       "default: all of the project's targets)")
    which = build.add_mutually_exclusive_group()
    which.add_argument("--branch")
    which.add_argument("--revision")
    build.add_argument("--profile", help="cargo profile (default: the project's)")
    build.add_argument("--wait", action="store_true", help="follow the builds until they end")
    build.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits")
    build.set_defaults(func=cmd_build)

    logs = _command(sub, "logs", common, help="print a build's logs",
                    description="Print the logs of a project's build for one target: the"
                    " newest build, or --build N; every step, or --step NAME.")
    logs.add_argument("project")
    logs.add_argument("--target", help="the target triple (needed when the project has several)")
    logs.add_argument("--build", type=int, metavar="N", help="the build number (default: newest)")
    logs.add_argument("--step", metavar="NAME", help="only this step's log, e.g. 'cargo build'")
    logs.set_defaults(func=cmd_logs)

    compile_ = _command(sub, "compile", common, help="build the project in a directory, "
                        "no commit needed",
                        description="Upload the Cargo project in DIRECTORY (what git would "
                        "commit; without git, all but target/) to the farm's compile endpoint,"
                        " follow its builds and write each target's archive and a SHA256SUMS"
                        " to --out. Exits 0 only when every target built.")
    compile_.add_argument("directory", nargs="?", default=".")
    compile_.add_argument("--target", action="append",
                          help="a target triple (repeatable; default: every target the farm "
                               "builds uploads for)")
    compile_.add_argument("--out", default="rustfarm-out",
                          help="where the archives go (default: ./rustfarm-out)")
    compile_.add_argument("--user", help="whose token (default: the first of www.users, or "
                          "RUSTFARM_TOKEN)")
    compile_.add_argument("--timeout", type=float, default=3600,
                          help="seconds to wait for the builds")
    compile_.set_defaults(func=cmd_compile)

    token = _command(sub, "token", common, help="print (or make) a user's compile token",
                     description="Print the compile endpoint's token of USER, making one if"
                     " there is none; --new replaces it. Clients send it as"
                     " 'Authorization: Bearer TOKEN'.")
    token.add_argument("user")
    token.add_argument("--new", action="store_true", help="replace the token")
    token.set_defaults(func=cmd_token)

    registry_token = _command(sub, "registry-token", common,
                              help="store the token of a registry of crates.registries",
                              description="Read the token of REGISTRY (one of farm.yaml's "
                              "crates.registries) on standard input, or at a prompt, and keep "
                              "it in the farm's secret store; the farm's cargo uses it to "
                              "fetch crates, and no build sees it.")
    registry_token.add_argument("registry")
    registry_token.set_defaults(func=cmd_registry_token)

    webhook_secret = _command(sub, "webhook-secret", common,
                              help="print (or make) a project's webhook secret",
                              description="Print the secret PROJECT's forge signs its webhooks "
                              "with, making one the first time; --new replaces it. Give it to "
                              "the forge with the webhook's URL (docs/forges.md).")
    webhook_secret.add_argument("project")
    webhook_secret.add_argument("--new", action="store_true", help="replace the secret")
    webhook_secret.set_defaults(func=cmd_webhook_secret)

    forge_token = _command(sub, "forge-token", common,
                           help="store the token commit statuses are posted with",
                           description="Read the API token of PROJECT's forge on standard "
                           "input, or at a prompt, and keep it in the farm's secret store; the "
                           "master posts commit statuses with it, and no build sees it.")
    forge_token.add_argument("project")
    forge_token.set_defaults(func=cmd_forge_token)

    passwd = _command(sub, "passwd", common, help="set a web UI user's password")
    passwd.add_argument("user")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")
    passwd.set_defaults(func=cmd_passwd)

    db_password = _command(sub, "db-password", common,
                           help="store the password of db.url's PostgreSQL server",
                           description="Store the password of the PostgreSQL server db.url "
                           "names in the state directory's secret store, so that db.url and "
                           "farm.yaml need not carry it. The masters use it from their next "
                           "start. (A local server's, db.server: local, is farm up's own.)")
    db_password.add_argument("--password-stdin", action="store_true",
                             help="read the password from standard input")
    db_password.set_defaults(func=cmd_db_password)

    targets = _command(sub, "targets", common, help="list the farm's targets")
    targets.add_argument("--known", action="store_true", help="list every triple rustc knows")
    targets.add_argument("--markdown", action="store_true",
                         help="print rustfarm/targets.yaml as the table of images/README.md")
    targets.set_defaults(func=cmd_targets)

    _command(sub, "builders", common, help="list the builders farm.yaml makes",
             description="Every builder farm.yaml makes (one per project and target, and one"
             " per target that uploads build for) with its pool, workers and image."
             ).set_defaults(func=cmd_builders)

    from .release_commands import add_commands as add_release_commands
    add_release_commands(sub, common)
    from rustfarm.images.cli import add_commands
    add_commands(sub, parents=[common]).set_defaults(func=cmd_images)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    # Shell completion: eval "$(register-python-argcomplete farm)" (README).
    argcomplete.autocomplete(top)
    args = top.parse_args(argv)
    try:
        return args.func(args)
    except FarmFileError as err:
        for problem in err.problems:
            warn(str(problem))
        return 2
    except FarmError as err:
        warn(f"farm: {err}")
        return 1
    except KeyboardInterrupt:
        warn("farm: interrupted")
        return 130

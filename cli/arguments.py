"""The `farm` command's arguments: every subcommand, its options and its examples."""

from __future__ import annotations

import argparse
from pathlib import Path

from .commands import (DEFAULT_CONFIG, cmd_build, cmd_builders, cmd_check, cmd_compile,
                       cmd_db_password, cmd_down, cmd_forge_token, cmd_images, cmd_logs,
                       cmd_passwd, cmd_registry_token, cmd_reload, cmd_status, cmd_targets,
                       cmd_token, cmd_up, cmd_webhook_secret)
from .github_app_key import cmd_github_app_key

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
    "github-app-key": "example:\n  farm github-app-key hello < acme-farm.private-key.pem",
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

    app_key = _command(sub, "github-app-key", common,
                       help="store the private key of the GitHub App check runs are made as",
                       description="Read the private key (.pem) of the GitHub App that "
                       "PROJECT's forge.checks names on standard input and keep it in the "
                       "farm's secret store; the master signs its check runs' requests with "
                       "it, and no build sees it.")
    app_key.add_argument("project")
    app_key.set_defaults(func=cmd_github_app_key)

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

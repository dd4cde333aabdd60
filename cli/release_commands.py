"""``farm key`` (the public key that signs releases; ``--rotate`` makes a new one),
``farm verify DIR|URL`` (a downloaded or served release: signature, checksums,
provenance) and ``farm verify-build PROJECT REVISION`` (a rebuild that must give the
release's binaries)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

import requests

from rustfarm.errors import FarmError
from rustfarm.farmfile import load
from rustfarm.minisign import PublicKey
from rustfarm.names import REBUILT_ON_PROPERTY, RELEASE_BUILT_ON_PROPERTY
from rustfarm.progress import say, warn
from rustfarm.release_files import SIGNATURE_FILE, SUMS_FILE, ReleaseCheckFailed, \
    rebuilt_where, verify_target
from rustfarm.release_keys import ReleaseKeys, keys_file_text, parse_keys_file, \
    published_keys
from rustfarm.artifact_store import KEY_ID_SECRET, SECRET_KEY_SECRET
from rustfarm.state import SecretStore, StateDir

KEYS_URL_PATH = "plugins/artifacts/release-keys.pub"


def cmd_key(args) -> int:
    farm = load(args.config)
    keys = ReleaseKeys(StateDir.of(farm))
    if args.rotate:
        new, old = keys.rotate()
        warn(f"release signing key {new.id_text} made" + (
            f"; {old.id_text} signs no more releases and stays trusted for those it signed"
            if old else ""))
    say(keys_file_text([keys.current()]).rstrip("\n"))
    if args.all:
        say(keys_file_text(keys.trusted()[1:]).rstrip("\n"))
    warn(f"served at {farm.farm.url}plugins/artifacts/release-key.pub "
         f"(every key: {farm.farm.url}{KEYS_URL_PATH})")
    return 0


def _trusted_keys(args) -> list[PublicKey]:
    if args.key:
        keys = []
        for path in args.key:
            try:
                keys += parse_keys_file(Path(path).read_text(), path)
            except OSError as err:
                raise FarmError(f"--key {path}: {err.strerror}") from None
        return keys
    try:
        farm = load(args.config)
    except FarmError:
        farm = None
    keys = published_keys(StateDir.of(farm).release_keys) if farm else []
    if not keys:
        raise FarmError("no trusted key: give --key FILE, the farm's public keys (it serves "
                        f"them at <its URL>/{KEYS_URL_PATH}; `farm key --all` prints them)")
    return keys


class _Files:
    """A target's files, from a directory or a URL."""

    def __init__(self, place: str, session: requests.Session | None):
        self.place = place.rstrip("/")
        self.session = session

    def read(self, name: str) -> bytes:
        if self.session is None:
            return (Path(self.place) / name).read_bytes()
        try:
            reply = self.session.get(f"{self.place}/{name}", timeout=60)
        except requests.RequestException as err:
            raise OSError(f"cannot be fetched ({err})") from None
        if reply.status_code != 200:
            raise OSError(f"cannot be fetched (HTTP {reply.status_code})")
        return reply.content

    def child(self, name: str) -> "_Files":
        return _Files(f"{self.place}/{name}", self.session)

    def has(self, name: str) -> bool:
        try:
            self.read(name)
        except OSError:
            return False
        return True


def _targets(files: _Files) -> list[tuple[str, _Files]]:
    """The targets under ``files``: itself when it is one target's, else those its
    release SHA256SUMS (a URL) or its directories (a directory) name."""
    if files.has(SIGNATURE_FILE):
        return [(Path(files.place).name, files)]
    if files.session is not None:
        names = sorted({line.split("  ", 1)[1].split("/")[0]
                        for line in files.read(SUMS_FILE).decode().splitlines() if "  " in line})
    else:
        names = sorted(p.name for p in Path(files.place).iterdir()
                       if p.is_dir() and not p.name.startswith("."))
    return [(name, files.child(name)) for name in names]


def cmd_verify(args) -> int:
    keys = _trusted_keys(args)
    remote = args.place.startswith(("http://", "https://"))
    files = _Files(args.place, requests.Session() if remote else None)
    if not remote and not Path(args.place).is_dir():
        raise FarmError(f"{args.place}: not a directory nor a URL")
    try:
        targets = _targets(files)
    except OSError as err:
        raise FarmError(f"{args.place}: no signed release there ({err})") from None
    if args.target:
        targets = [(name, f) for name, f in targets if name in args.target]
    if not targets:
        raise FarmError(f"{args.place}: no signed release there")
    failed = 0
    for name, target_files in targets:
        try:
            verified = verify_target(target_files.read, target_files.place, name, keys)
        except ReleaseCheckFailed as err:
            warn(f"NOT VERIFIED {name}: {err}")
            failed += 1
            continue
        say(f"verified {name}: {len(verified.files)} files ({', '.join(verified.files)}), "
            f"signed by key {verified.key_id} ({verified.comment})")
    return 1 if failed else 0


def cmd_verify_build(args) -> int:
    from .api import FarmApi
    from .build_command import follow, force
    farm = load(args.config)
    api = FarmApi.for_farm(farm)
    project = farm.projects.get(args.project)
    revision = args.revision
    if project is not None and not project.is_git:
        # A plain directory has one revision, its files' content hash: the rebuild takes
        # them as they are, and compares with the release of the hash they give.
        say(f"{args.project} is a plain directory: rebuilding its files as they are "
            f"(their content hash must be {args.revision})")
        revision = None
    requests = force(farm, api, args.project, args.target or [], None, revision, None,
                     reproduce=True, release=args.revision)
    for request in requests:
        say(f"rebuilding {args.project} {args.revision} for {request.builder.split(':', 1)[1]} "
            f"without the compile cache, in a volume of its own (build request {request.brid})")
    reproduced = follow(farm, api, requests, args.timeout)
    for request in requests:
        where = _rebuilt_where(api, request.build)
        if where:
            say(f"{request.builder}: {where}")
    say(f"{args.project} {args.revision}: " + ("every target reproduced" if reproduced else
                                               "NOT reproduced everywhere (see above)"))
    return 0 if reproduced else 1


def _rebuilt_where(api, build: dict | None) -> str:
    """Which worker rebuilt the target, and which built its release, as its build says."""
    if build is None:
        return ""
    wanted = (REBUILT_ON_PROPERTY, RELEASE_BUILT_ON_PROPERTY)
    found = api.get(f"builds/{build['buildid']}", property=list(wanted))["builds"]
    props = found[0].get("properties", {}) if found else {}
    rebuilt_on, built_on = (props.get(name, [None])[0] for name in wanted)
    return rebuilt_where(rebuilt_on, built_on or None)


def cmd_artifacts_credentials(args) -> int:
    """The S3 store's access key, kept in the secret store: the master alone uses it."""
    farm = load(args.config)
    if farm.artifacts.s3 is None:
        raise FarmError(f"{farm.path.name}: artifacts.s3 names no bucket; the store is the "
                        f"directory {farm.artifacts.directory}, which needs no credentials")
    if sys.stdin.isatty():
        key_id = input("access key id: ").strip()
        secret = getpass.getpass("secret access key: ").strip()
    else:
        key_id, secret = (sys.stdin.readline().strip(), sys.stdin.readline().strip())
    if not key_id or not secret:
        raise FarmError("give the access key id and the secret access key, one a line; "
                        "nothing changed")
    paths = StateDir.of(farm)
    paths.create()
    store = SecretStore(paths.secrets)
    store.write(KEY_ID_SECRET, key_id)
    store.write(SECRET_KEY_SECRET, secret)
    say(f"stored the credentials of bucket {farm.artifacts.s3.bucket} in {paths.secrets} "
        "(a running master uses them after `farm reload`)")
    return 0


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    key = sub.add_parser("key", parents=[common], help="print the public key that signs releases",
                         description="Print the public key (minisign's format) that signs the "
                         "farm's releases, making the key the first time. --rotate makes a new "
                         "one; the old public keys stay trusted for the releases they signed.")
    key.add_argument("--rotate", action="store_true", help="make a new signing key")
    key.add_argument("--all", action="store_true", help="also print the older public keys")
    key.set_defaults(func=cmd_key)
    verify = sub.add_parser("verify", parents=[common], help="check a downloaded release",
                            description="Check a release, a directory of it or its URL: the "
                            "signature of each target's SHA256SUMS by a trusted key, every "
                            "checksum, and the provenance naming the archive.")
    verify.add_argument("place", metavar="DIR|URL")
    verify.add_argument("--key", action="append", metavar="FILE",
                        help="trusted public keys (default: the farm's own)")
    verify.add_argument("--target", action="append", help="only this target (repeatable)")
    verify.set_defaults(func=cmd_verify)
    again = sub.add_parser("verify-build", parents=[common],
                           help="rebuild a release to check it reproduces",
                           description="Rebuild PROJECT's release of REVISION for each of its "
                           "targets (or --target's) without the compile cache, in a volume "
                           "of its own and on another worker than the release's where the "
                           "target has one, and compare the binaries with the release's, byte "
                           "for byte; the release page shows the outcome and the workers.")
    again.add_argument("project")
    again.add_argument("revision")
    again.add_argument("--target", action="append", help="only this target (repeatable)")
    again.add_argument("--timeout", type=float, default=3600,
                       help="seconds to wait for the rebuilds (default 3600)")
    again.set_defaults(func=cmd_verify_build)
    credentials = sub.add_parser(
        "artifacts-credentials", parents=[common], help="store the S3 store's access key",
        description="Read the access key id and the secret access key of artifacts.s3's "
        "bucket (one a line) on standard input, or at prompts, into the farm's secret "
        "store; without them the master uses boto3's own chain (an instance profile).")
    credentials.set_defaults(func=cmd_artifacts_credentials)

"""The sign step: on the master, after the package step, a target's release gets its
SBOM and provenance (rustfarm/attestations.py), a SHA256SUMS of every file and that
SHA256SUMS signed with the farm's release key (rustfarm/release_keys.py)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from buildbot.process import buildstep
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from rustfarm.artifact_store import StoreError, publish, write_text
from rustfarm.attestations import PROVENANCE_FILE, SBOM_FILE, ReleaseFacts, Shipped
from rustfarm.crate_store import CrateStore
from rustfarm.device_packages import PackageInfo, package_name, package_version
from rustfarm.errors import FarmError
from rustfarm.names import IMAGE_ID_PROPERTY, IMAGE_PROPERTY, REBUILT_ON_PROPERTY, \
    RELEASE_BUILT_ON_PROPERTY
from rustfarm.release_files import REPRODUCED_FILE, SIGNATURE_FILE, Packaging, \
    ReleaseCheckFailed, attest_target, compare_reproduction, rebuilt_where, release_worker
from rustfarm.release_keys import ReleaseKeys

from .artifact_places import ArtifactPlaces
from .staged_uploads import store_refusal


class SignRelease(buildstep.BuildStep):
    """``artifact_dir`` holds the target's ``archive`` (and the Cargo.lock the
    dependencies step kept); ``url`` is where the web server serves it."""

    name = "sign"
    description = "signing"
    renderables = ["artifact_dir", "archive", "url", "profile", "cargo_arguments"]

    def __init__(self, keys: ReleaseKeys, store: CrateStore | None, artifact_dir, archive,
                 project: str, repository: str, target: str, farm_url: str, profile,
                 cargo_arguments, environment: dict[str, str], url=None,
                 package_kinds: tuple[tuple[str, str], ...] = (), service: str = "",
                 maintainer: str = "", **kwargs):
        super().__init__(**kwargs)
        self.package_kinds = package_kinds
        self.service = service
        self.maintainer = maintainer
        self.keys = keys
        self.store = store
        self.artifact_dir = artifact_dir
        self.archive = archive
        self.project = project
        self.repository = repository
        self.target = target
        self.farm_url = farm_url
        self.profile = profile
        self.cargo_arguments = cargo_arguments
        self.environment = environment
        self.url = url

    @defer.inlineCallbacks
    def facts(self) -> ReleaseFacts:
        build = yield self.master.data.get(("builds", self.build.buildid))
        started = build["started_at"]
        digests = self.getProperty("binary_digests") or {}
        sizes = self.getProperty("binary_sizes") or {}
        return ReleaseFacts(
            project=self.project, target=self.target,
            revision=self.getProperty("got_revision") or self.getProperty("revision_label"),
            repository=self.repository, builder=self.build.builder.name,
            build_url=(yield self.build.getUrl()), farm_url=self.farm_url,
            image=self.getProperty(IMAGE_PROPERTY) or "",
            image_digest=self.getProperty(IMAGE_ID_PROPERTY) or "",
            toolchain=self.getProperty("toolchain") or "", profile=str(self.profile),
            cargo_arguments=tuple(str(a) for a in self.cargo_arguments),
            environment=dict(self.environment),
            started=started.timestamp() if isinstance(started, datetime) else time.time(),
            finished=time.time(),
            archive=Shipped(self.archive, self.getProperty("archive_sha256") or ""),
            binaries=tuple(Shipped(name, digest, int(sizes.get(name, 0)))
                           for name, digest in sorted(digests.items())),
            worker=self.build.workername or "")

    def packaging(self) -> Packaging | None:
        if not self.package_kinds:
            return None
        about = self.getProperty("crate_about") or {}
        revision = self.getProperty("revision_label") or ""
        service = self.service
        if service and not service.startswith("/"):
            service = f"/usr/bin/{service}"
        info = PackageInfo(
            name=package_name(self.project),
            version=package_version(about.get("version"), revision),
            description=about.get("description") or f"{self.project} for {self.target}",
            maintainer=self.maintainer or f"{self.project} maintainers <{self.project}@localhost>",
            license=about.get("license", ""), epoch=int(self.getProperty("commit_time") or 0),
            service=service)
        return Packaging(info, self.package_kinds)

    @defer.inlineCallbacks
    def run(self):
        facts = yield self.facts()
        log = yield self.addLog("stdio")
        began = time.monotonic()
        try:
            signed = yield threads.deferToThread(
                attest_target, Path(self.artifact_dir), facts, self.keys, self.store,
                list(self.getProperty("linked_crates") or []), self.packaging())
        except (FarmError, OSError, ValueError) as err:
            yield log.addStderr(f"{err}\n")
            why = store_refusal(err, Path(self.artifact_dir)) \
                if isinstance(err, OSError) and err.errno is not None else str(err)[:200]
            self.descriptionDone = f"could not sign the release: {why}"
            return FAILURE
        yield log.addStdout(
            "".join(f"{digest}  {name}\n" for name, digest in signed.files)
            + f"signed SHA256SUMS with key {signed.key_id} in "
            f"{time.monotonic() - began:.3f} s\n"
            + f"SBOM: {signed.crates} crates linked into the binaries\n")
        if self.url:
            packages = [name for name, _ in signed.files if name.endswith((".deb", ".ipk"))]
            for name in (*packages, SBOM_FILE, PROVENANCE_FILE, SIGNATURE_FILE):
                yield self.addURL(name, self.url + name)
        made = [name.rpartition(".")[2] for name, _ in signed.files
                if name.endswith((".deb", ".ipk"))]
        self.descriptionDone = (f"signed (key {signed.key_id}), SBOM of {signed.crates} crates"
                                + (f", {' and '.join(made)}" if made else ""))
        return SUCCESS


# Where a reproduction's files go, inside the release's target directory.
REPRODUCTION_DIR = ".reproduce"


class CompareWithRelease(buildstep.BuildStep):
    """A reproduction's last step: its binaries against the release's, byte for byte;
    the outcome goes beside the release (``reproduced.json``), which its page shows."""

    name = "compare with the release"
    description = "comparing"
    renderables = ["reproduction_dir", "release_url"]

    def __init__(self, reproduction_dir, release_url, places: ArtifactPlaces, **kwargs):
        super().__init__(**kwargs)
        self.reproduction_dir = reproduction_dir
        self.release_url = release_url
        self.places = places

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        here = Path(self.reproduction_dir)
        archive = Path(self.getProperty("package_archive") or "").name
        release_dir = self.places.stored(here.parent)
        try:
            differs = yield threads.deferToThread(compare_reproduction, release_dir, here,
                                                  archive)
        except (ReleaseCheckFailed, OSError) as err:
            yield log.addStderr(f"{err}\n")
            self.descriptionDone = "nothing to compare with"
            return FAILURE
        built_on = yield threads.deferToThread(release_worker, release_dir)
        rebuilt_on = self.build.workername or ""
        self.setProperty(REBUILT_ON_PROPERTY, rebuilt_on, "Compare")
        self.setProperty(RELEASE_BUILT_ON_PROPERTY, built_on or "", "Compare")
        yield log.addStdout(rebuilt_where(rebuilt_on, built_on) + "\n")
        outcome = {"reproduced": not differs, "differs": differs,
                   "build": (yield self.build.getUrl()), "checked": int(time.time()),
                   "archive_sha256": self.getProperty("archive_sha256") or "",
                   "rebuilt_on": rebuilt_on, "release_built_on": built_on or "",
                   "same_worker": rebuilt_on == built_on}
        yield threads.deferToThread(write_text, release_dir / REPRODUCED_FILE,
                                    json.dumps(outcome, indent=2, sort_keys=True) + "\n")
        if self.release_url:
            yield self.addURL(f"release {self.getProperty('revision_label')}", self.release_url)
        if differs:
            yield log.addStderr(f"not reproduced: {', '.join(differs)} differ from the "
                                "release's\n")
            verb = "differs" if len(differs) == 1 else "differ"
            self.descriptionDone = f"NOT reproduced: {', '.join(differs)} {verb}"
            return FAILURE
        yield log.addStdout("reproduced: every binary is the release's, byte for byte\n")
        self.descriptionDone = "reproduced"
        return SUCCESS


class PublishRelease(buildstep.BuildStep):
    """With an S3 store: the build's files, staged on the master, uploaded to their
    place in the bucket (SHA256SUMS last: the target then appears in its release)."""

    name = "publish"
    description = "publishing"
    renderables = ["staged"]

    def __init__(self, staged, places: ArtifactPlaces, **kwargs):
        super().__init__(**kwargs)
        self.staged = staged
        self.places = places

    @defer.inlineCallbacks
    def run(self):
        log = yield self.addLog("stdio")
        staged = Path(self.staged)
        try:
            destination = self.places.stored(staged)
            names = yield threads.deferToThread(publish, staged, destination)
        except (StoreError, OSError, ValueError) as err:
            yield log.addStderr(f"{err}\n")
            self.descriptionDone = "could not publish to the artifact store"
            return FAILURE
        yield log.addStdout("".join(f"uploaded {name}\n" for name in names)
                            + f"to {destination}\n")
        self.descriptionDone = f"published {len(names)} files"
        return SUCCESS

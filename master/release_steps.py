"""The sign step: on the master, after the package step, a target's release gets its
SBOM and provenance (rustfarm/attestations.py), a SHA256SUMS of every file and that
SHA256SUMS signed with the farm's release key (rustfarm/release_keys.py)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from buildbot.process import buildstep
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer, threads

from rustfarm.attestations import PROVENANCE_FILE, SBOM_FILE, ReleaseFacts, Shipped
from rustfarm.crate_store import CrateStore
from rustfarm.errors import FarmError
from rustfarm.names import IMAGE_ID_PROPERTY, IMAGE_PROPERTY
from rustfarm.release_keys import ReleaseKeys
from rustfarm.release_files import SIGNATURE_FILE, attest_target


class SignRelease(buildstep.BuildStep):
    """``artifact_dir`` holds the target's ``archive`` (and the Cargo.lock the
    dependencies step kept); ``url`` is where the web server serves it."""

    name = "sign"
    description = "signing"
    renderables = ["artifact_dir", "archive", "url", "profile", "cargo_arguments"]

    def __init__(self, keys: ReleaseKeys, store: CrateStore | None, artifact_dir, archive,
                 project: str, repository: str, target: str, farm_url: str, profile,
                 cargo_arguments, environment: dict[str, str], url=None, **kwargs):
        super().__init__(**kwargs)
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
            binaries=tuple(Shipped(name, digest) for name, digest in sorted(digests.items())))

    @defer.inlineCallbacks
    def run(self):
        facts = yield self.facts()
        log = yield self.addLog("stdio")
        began = time.monotonic()
        try:
            signed = yield threads.deferToThread(
                attest_target, Path(self.artifact_dir), facts, self.keys, self.store,
                list(self.getProperty("linked_crates") or []))
        except (FarmError, OSError, ValueError) as err:
            yield log.addStderr(f"{err}\n")
            self.descriptionDone = "could not sign the release"
            return FAILURE
        yield log.addStdout(
            "".join(f"{digest}  {name}\n" for name, digest in signed.files)
            + f"signed SHA256SUMS with key {signed.key_id} in "
            f"{time.monotonic() - began:.3f} s\n"
            + f"SBOM: {signed.crates} crates linked into the binaries\n")
        if self.url:
            for name in (SBOM_FILE, PROVENANCE_FILE, SIGNATURE_FILE):
                yield self.addURL(name, self.url + name)
        self.descriptionDone = f"signed (key {signed.key_id}), SBOM of {signed.crates} crates"
        return SUCCESS

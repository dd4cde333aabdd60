"""What a release says about itself: a CycloneDX SBOM of the crates linked into its
binaries (cyclonedx-python-lib) and an in-toto statement with a SLSA v1 provenance
predicate (in-toto-attestation), both JSON, both listed in the signed SHA256SUMS.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from packageurl import PackageURL

from .cargo_lock import LockedPackage, package_id_name_version

SBOM_FILE = "sbom.cdx.json"
PROVENANCE_FILE = "provenance.intoto.json"
LOCK_FILE = "Cargo.lock"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
# What a build of the farm is: cargo, for a target, in a worker image (a URI, as SLSA asks).
BUILD_TYPE = "urn:rustfarm:build-type:cargo:v1"


@dataclass(frozen=True)
class Shipped:
    """A file of the release: its name, SHA-256 and (binaries) size in bytes."""
    name: str
    sha256: str
    size: int = 0


@dataclass(frozen=True)
class ReleaseFacts:
    """What the farm knows of one target's build when it signs it."""
    project: str
    target: str
    revision: str
    repository: str
    builder: str
    build_url: str
    farm_url: str
    image: str
    image_digest: str
    toolchain: str
    profile: str
    cargo_arguments: tuple[str, ...]
    environment: dict[str, str]
    started: float
    finished: float
    archive: Shipped
    binaries: tuple[Shipped, ...]
    lock_sha256: str = ""
    farm_version: str = ""
    packages: tuple[Shipped, ...] = ()      # the .deb and .ipk made of the binaries
    worker: str = ""                        # the farm's worker that built it
    extra: dict = field(default_factory=dict)


def linked_packages(linked_ids: list[str], lock: list[LockedPackage]) -> list[LockedPackage]:
    """The Cargo.lock packages of the package ids cargo compiled for the target, in the
    lock's order; a package the lock lacks (no lock was kept) without source or checksum."""
    wanted = {nv for nv in map(package_id_name_version, linked_ids) if nv}
    found = [p for p in lock if (p.name, p.version) in wanted]
    known = {(p.name, p.version) for p in found}
    return found + [LockedPackage(n, v) for n, v in sorted(wanted - known)]


def crate_license(entry: Path) -> str | None:
    """The license expression of a crate as its Cargo.toml in the crate store says."""
    try:
        manifest = tomllib.loads((entry / "Cargo.toml").read_text(errors="replace"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    license_ = manifest.get("package", {}).get("license")
    return license_ if isinstance(license_, str) else None


def _purl(package: LockedPackage) -> PackageURL:
    qualifiers = {}
    if package.kind == "git":
        qualifiers["vcs_url"] = (package.source or "")[len("git+"):]
    elif package.kind == "registry" and "crates.io-index" not in (package.source or "") \
            and "index.crates.io" not in (package.source or ""):
        qualifiers["repository_url"] = (package.source or "").partition("+")[2]
    return PackageURL("cargo", name=package.name, version=package.version,
                      qualifiers=qualifiers or None)


def sbom(facts: ReleaseFacts, packages: list[LockedPackage],
         licenses: dict[tuple[str, str], str]) -> str:
    """CycloneDX 1.6 JSON: the project's binaries as the application, each linked crate
    (name, version, license, source, checksum) a component it depends on."""
    bom = Bom()
    bom.metadata.timestamp = datetime.fromtimestamp(int(facts.finished), timezone.utc)
    root = Component(name=facts.project, version=facts.revision,
                     type=ComponentType.APPLICATION, bom_ref=f"{facts.project}@{facts.revision}",
                     description=f"{facts.project} for {facts.target}",
                     hashes=[HashType(alg=HashAlgorithm.SHA_256, content=facts.archive.sha256)])
    bom.metadata.component = root
    for binary in facts.binaries:
        root.components.add(Component(
            name=binary.name, type=ComponentType.FILE, bom_ref=f"file:{binary.name}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=binary.sha256)]))
    crates = []
    for package in sorted(packages, key=lambda p: (p.name, p.version, p.source or "")):
        if package.kind == "path":
            continue        # the project's own packages: the application itself
        license_ = licenses.get((package.name, package.version))
        component = Component(
            name=package.name, version=package.version, type=ComponentType.LIBRARY,
            bom_ref=f"{package.name}@{package.version}", purl=_purl(package),
            licenses=[LicenseExpression(license_)] if license_ else None,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=package.checksum)]
            if package.checksum else None)
        bom.components.add(component)
        crates.append(component)
    bom.register_dependency(root, crates)
    document = json.loads(JsonV1Dot6(bom).output_as_string())
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def sbom_crates(text: str) -> list[tuple[str, str]]:
    """(name, version) of each crate an SBOM lists."""
    return sorted((c["name"], c.get("version", "")) for c in json.loads(text).get("components", [])
                  if c.get("type") == "library")


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance(facts: ReleaseFacts) -> str:
    """The in-toto statement of the target's archive and binaries, predicate SLSA v1."""
    predicate = provenance_pb2.Provenance()
    definition = predicate.build_definition
    definition.build_type = BUILD_TYPE
    definition.external_parameters.update({
        "project": facts.project, "target": facts.target, "profile": facts.profile,
        "source": {"repository": facts.repository, "revision": facts.revision}})
    definition.internal_parameters.update({
        "cargo_arguments": list(facts.cargo_arguments), "environment": facts.environment,
        "toolchain": facts.toolchain, **({"worker": facts.worker} if facts.worker else {}),
        **facts.extra})
    dependencies = [ResourceDescriptor(uri=_source_uri(facts.repository, facts.revision),
                                       digest={"gitCommit": facts.revision}
                                       if len(facts.revision) == 40 else None)]
    if facts.lock_sha256:
        dependencies.append(ResourceDescriptor(name=LOCK_FILE,
                                               digest={"sha256": facts.lock_sha256}))
    if facts.image:
        image_digest = facts.image_digest.partition(":")[2] or facts.image_digest
        dependencies.append(ResourceDescriptor(
            uri=f"docker-image:{facts.image}", name="worker image",
            digest={"sha256": image_digest} if image_digest else None))
    dependencies.append(ResourceDescriptor(name="rust toolchain",
                                           annotations={"release": facts.toolchain}))
    definition.resolved_dependencies.extend(d.pb for d in dependencies)
    run = predicate.run_details
    run.builder.id = f"{facts.farm_url}#builders/{facts.builder}"
    if facts.farm_version:
        run.builder.version["rustfarm"] = facts.farm_version
    run.metadata.invocation_id = facts.build_url
    run.metadata.started_on.FromSeconds(int(facts.started))
    run.metadata.finished_on.FromSeconds(int(facts.finished))
    subjects = [ResourceDescriptor(name=s.name, digest={"sha256": s.sha256},
                                   annotations={"size": str(s.size)} if s.size else None).pb
                for s in (facts.archive, *facts.binaries, *facts.packages)]
    statement = Statement(subjects, SLSA_PROVENANCE, json_format.MessageToDict(predicate))
    statement.validate()
    return json.dumps(json_format.MessageToDict(statement.pb), indent=2, sort_keys=True) + "\n"


def binary_sizes(text: str) -> dict[str, int]:
    """The sizes the provenance gives its binaries (subjects annotated with one)."""
    sizes = {}
    for subject in json.loads(text).get("subject", []):
        size = subject.get("annotations", {}).get("size")
        if isinstance(size, str) and size.isdigit():
            sizes[subject["name"]] = int(size)
    return sizes


def provenance_worker(text: str) -> str | None:
    """The worker the provenance says built the release; None when it names none."""
    predicate = json.loads(text).get("predicate", {})
    worker = predicate.get("buildDefinition", {}).get("internalParameters", {}).get("worker")
    return worker if isinstance(worker, str) and worker else None


def _source_uri(repository: str, revision: str) -> str:
    if repository.startswith("/"):
        repository = f"file://{repository}"
    base = repository if repository.startswith("git+") else f"git+{repository}"
    return f"{base}@{revision}"


def provenance_subjects(text: str) -> dict[str, str]:
    """The statement's subjects: name to SHA-256; ValueError when it is not one of ours."""
    statement = json.loads(text)
    if statement.get("_type") != "https://in-toto.io/Statement/v1" \
            or statement.get("predicateType") != SLSA_PROVENANCE:
        raise ValueError("not an in-toto statement of SLSA v1 provenance")
    return {s["name"]: s["digest"]["sha256"] for s in statement.get("subject", [])}

"""Real projects: dependencies from crates.io (fetched by the farm, checked, shared
read-only with the build containers), a Cargo.lock the farm resolves, a git
dependency, a private registry's crate fetched with a token no build sees, and a
hostile cargo configuration that runs only inside the build's container. Real
crates.io, a real registry (nginx), real containers, binaries run under qemu."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid

import pytest
import requests

from tests.support.binaries import check_artifact, embedded_crates
from tests.support.crates import renamed_copy, write_crate
from tests.support.crates_io import require_crates_io
from tests.support.farm import RunningFarm
from tests.support.git_repos import PushedRepository

from .conftest import FIXTURES, TARGETS, targets_yaml, up_for_the_module
from .test_container_builds import fetch_binary, run_in_image

pytestmark = pytest.mark.docker

POOL = "rp"
MIPS_MUSL = "mips-unknown-linux-musl"
MIPS64_GNU = "mips64-unknown-linux-gnuabi64"
X86_64 = "x86_64-unknown-linux-gnu"
# Where the hostile project's wrapper leaves its mark, were it to run on this machine.
MARK = f"/tmp/rustfarm-hostile-{uuid.uuid4().hex}"

# The project's rustc (its .cargo/config.toml's build.rustc), run wherever cargo reads
# that configuration: leaves MARK, and tells the compile it ran (the binary says so).
HOSTILE_RUSTC = f"""#!/bin/sh
touch {MARK}
export HOSTILE_RUSTC_RAN=yes
exec rustc "$@"
"""
HOSTILE_MAIN = """fn main() {
    let ran = option_env!("HOSTILE_RUSTC_RAN").unwrap_or("no");
    println!("its rustc ran in the build: {ran}, {}", itoa::Buffer::new().format(42u8));
}
"""


# The private registry's token: the farm's cargo alone may see it.
TOKEN = f"company-{uuid.uuid4().hex}"
# A build script that says every variable of the build's environment (as cargo warnings,
# in the build's log), and the files a build can read that might hold a token.
ENV_DUMP_BUILD_RS = """fn main() {
    for (name, value) in std::env::vars() {
        println!("cargo:warning=env {name}={value}");
    }
    for path in ["/proc/1/environ", "/home/rustbuild/.cargo/credentials.toml",
                 "/home/rustbuild/.cargo/config.toml"] {
        if let Ok(text) = std::fs::read(path) {
            println!("cargo:warning=file {path}: {}", String::from_utf8_lossy(&text));
        }
    }
}
"""


@pytest.fixture(scope="module")
def company_registry(tmp_path_factory):
    """A private registry that needs TOKEN, with the crate secret-lib published."""
    from tests.support.cargo_registry import PrivateRegistry
    root = tmp_path_factory.mktemp("company")
    registry = PrivateRegistry(root / "registry", token=TOKEN).start()
    library = write_crate(root / "secret-lib", "secret-lib", "")
    (library / "src" / "main.rs").unlink()
    (library / "src" / "lib.rs").write_text("pub fn secret() -> u32 { 7 }\n")
    (library / "Cargo.toml").write_text((library / "Cargo.toml").read_text()
                                        + 'description = "a company crate"\nlicense = "MIT"\n')
    registry.publish(library)
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def real_farm(built_chain, company_registry, tmp_path_factory):
    require_crates_io()
    root = tmp_path_factory.mktemp("realfarm")
    private = write_crate(root / "private", "private",
                          'fn main() {\n    println!("secret {}", secret_lib::secret());\n}\n')
    (private / "Cargo.toml").write_text((private / "Cargo.toml").read_text() + (
        '\n[dependencies]\nsecret-lib = { version = "0.1", registry = "company" }\n'))
    (private / "build.rs").write_text(ENV_DUMP_BUILD_RS)
    again = renamed_copy("cli-deps", root, "cli-again")
    audited = renamed_copy("cli-deps", root, "cli-audited")
    nolock = write_crate(root / "nolock", "nolock", "fn main() {\n    println!(\"{}\", "
                         "itoa::Buffer::new().format(1234u32));\n}\n")
    (nolock / "Cargo.toml").write_text((nolock / "Cargo.toml").read_text()
                                       + '\n[dependencies]\nitoa = "1"\n')
    library = write_crate(root / "forked-src", "forked", "")
    (library / "src" / "main.rs").unlink()
    (library / "src" / "lib.rs").write_text("pub fn answer() -> u32 { 42 }\n")
    repo = PushedRepository(root / "git", "forked", library)
    gitdep = write_crate(root / "gitdep", "gitdep",
                         'fn main() {\n    println!("answer {}", forked::answer());\n}\n')
    (gitdep / "Cargo.toml").write_text((gitdep / "Cargo.toml").read_text() + (
        f'\n[dependencies]\nforked = {{ git = "{repo.url}", branch = "main" }}\n'))
    hostile = write_crate(root / "hostile", "hostile", HOSTILE_MAIN)
    (hostile / "Cargo.toml").write_text((hostile / "Cargo.toml").read_text()
                                        + '\n[dependencies]\nitoa = "1"\n')
    (hostile / "rustc.sh").write_text(HOSTILE_RUSTC)
    (hostile / "rustc.sh").chmod(0o755)
    (hostile / ".cargo").mkdir()
    (hostile / ".cargo" / "config.toml").write_text('[build]\nrustc = "./rustc.sh"\n')
    farm = RunningFarm(root / "farm", f"""\
schedule: {{nightly: false}}
crates:
  registries:
    company: {{index: "{company_registry.index}", token: true}}
workers:
  {POOL}: {{kind: docker, count: 2, cpus: 2, memory: 3g, standby: 0}}
targets:
{targets_yaml(built_chain, POOL)}
projects:
  cli:
    source: {FIXTURES / 'cli-deps'}
    targets: [{MIPS_MUSL}, {MIPS64_GNU}, {X86_64}]
    binaries: [cli-deps]
    test: false
  cli-again:
    source: {again}
    targets: [{MIPS_MUSL}]
    binaries: [cli-again]
    test: false
  cli-audited:
    source: {audited}
    targets: [{MIPS_MUSL}, {MIPS64_GNU}]
    auditable: true
    test: false
  nolock:
    source: {nolock}
    targets: [{MIPS_MUSL}]
    test: false
  gitdep:
    source: {gitdep}
    targets: [{MIPS_MUSL}]
    test: false
  hostile:
    source: {hostile}
    targets: [{MIPS_MUSL}]
    test: false
  private:
    source: {private}
    targets: [{MIPS_MUSL}]
    test: false
""")
    refused = farm.farm("check", check=False)
    assert refused.returncode != 0 and "farm registry-token company" in refused.stderr
    farm.farm("registry-token", "company", input=TOKEN + "\n")
    yield from up_for_the_module(farm, POOL)


def build(farm, project: str, *triples: str) -> dict[str, dict]:
    farm.login()
    brids = farm.force(f"force-{project}", targets=list(triples))
    return {name.split(":", 1)[1]: farm.wait_for_build(brid, timeout=900)
            for name, brid in brids.items()}


def dependencies_of(farm, build: dict) -> dict:
    props = farm.api(f"builds/{build['buildid']}", property="dependencies")["builds"][0]
    return props["properties"]["dependencies"][0]


def run_binary(built_chain, farm, build: dict, name: str, triple: str, tmp_path) -> str:
    target = TARGETS[triple]
    binary = fetch_binary(farm, build, name, tmp_path / f"{triple}-{build['buildid']}")
    check_artifact(binary, **target.binary.__dict__)
    runner = [] if target.is_native else [target.qemu]
    return run_in_image(built_chain.reference(triple), binary.parent, binary.name, runner)


def test_crates_from_crates_io_build_and_run_on_mips_and_x86(real_farm, built_chain, tmp_path):
    builds = build(real_farm, "cli", MIPS_MUSL, MIPS64_GNU, X86_64)
    arch = {MIPS_MUSL: "mips", MIPS64_GNU: "mips64", X86_64: "x86_64"}
    for triple, result in builds.items():
        assert result["results"] == 0, real_farm.step_log(result, "cargo build")[-3000:]
        steps = {s["name"]: s for s in real_farm.steps(result)}
        assert steps["dependencies"]["state_string"].startswith("29 crates, "), \
            steps["dependencies"]["state_string"]
        assert dependencies_of(real_farm, result)["crates"] == 29
        output = run_binary(built_chain, real_farm, result, "cli-deps", triple, tmp_path)
        assert json.loads(output) == {"name": "mips", "times": 2, "arch": arch[triple]}
    # The crates were fetched once for the farm: the first of the three builds to get
    # to its dependencies downloaded them all, the other two none.
    downloaded = sorted(dependencies_of(real_farm, b)["downloaded"] for b in builds.values())
    assert downloaded == [0, 0, 29]


def test_a_second_project_with_the_same_lock_downloads_nothing(real_farm, built_chain,
                                                                tmp_path):
    build(real_farm, "cli", MIPS_MUSL)
    [result] = build(real_farm, "cli-again", MIPS_MUSL).values()
    assert result["results"] == 0, real_farm.step_log(result, "cargo build")[-3000:]
    assert dependencies_of(real_farm, result) | {"seconds": 0} == {
        "crates": 29, "downloaded": 0, "resolved_lock": False, "seconds": 0}
    output = run_binary(built_chain, real_farm, result, "cli-again", MIPS_MUSL, tmp_path)
    assert json.loads(output)["arch"] == "mips"


def test_without_a_lock_the_build_keeps_the_lock_it_used(real_farm, built_chain, tmp_path):
    [result] = build(real_farm, "nolock", MIPS_MUSL).values()
    assert result["results"] == 0, real_farm.step_log(result, "cargo build")[-3000:]
    assert dependencies_of(real_farm, result)["resolved_lock"] is True
    [lock_url] = [u for u in real_farm.artifact_urls(result) if u.endswith("/Cargo.lock")]
    lock = requests.get(lock_url, timeout=30)
    assert lock.status_code == 200 and 'name = "itoa"' in lock.text
    assert real_farm.step_log(result, "dependencies") is not None
    assert run_binary(built_chain, real_farm, result, "nolock", MIPS_MUSL, tmp_path) == "1234"


def test_a_git_dependency_builds(real_farm, built_chain, tmp_path):
    [result] = build(real_farm, "gitdep", MIPS_MUSL).values()
    assert result["results"] == 0, real_farm.step_log(result, "cargo build")[-3000:]
    assert run_binary(built_chain, real_farm, result, "gitdep", MIPS_MUSL, tmp_path) == \
        "answer 42"


def test_a_hostile_cargo_configuration_runs_only_in_the_build_s_container(real_farm,
                                                                         built_chain, tmp_path):
    [result] = build(real_farm, "hostile", MIPS_MUSL).values()
    assert result["results"] == 0, real_farm.step_log(result, "cargo build")[-3000:]
    # The farm resolved and fetched its dependencies without running its rustc...
    assert dependencies_of(real_farm, result)["resolved_lock"] is True
    assert not os.path.exists(MARK), "the project's rustc ran on the farm's machine"
    # ...which ran where the project was compiled: in its container.
    assert run_binary(built_chain, real_farm, result, "hostile", MIPS_MUSL, tmp_path) == \
        "its rustc ran in the build: yes, 42"


def test_a_private_registry_s_crate_comes_with_a_token_no_build_sees(real_farm, built_chain,
                                                                    company_registry,
                                                                    tmp_path):
    [result] = build(real_farm, "private", MIPS_MUSL).values()
    assert result["results"] == 0, real_farm.step_log(result, "cargo build")[-3000:]
    assert run_binary(built_chain, real_farm, result, "private", MIPS_MUSL, tmp_path) == \
        "secret 7"
    assert company_registry.requests_with_token() >= 2
    # Not in the build's environment, nor its files, as its build script saw them; not
    # in any log or property of the build; not in the image.
    logs = real_farm.all_logs(result)
    assert "warning: private@0.1.0: env PATH=" in logs, "the build script said nothing"
    assert TOKEN not in logs
    props = real_farm.api(f"builds/{result['buildid']}", property="*")["builds"][0]
    assert TOKEN not in json.dumps(props)
    image = subprocess.run(["docker", "image", "inspect", built_chain.reference(MIPS_MUSL)],
                           capture_output=True, text=True, check=True).stdout
    assert TOKEN not in image


def test_a_release_is_signed_and_its_sbom_lists_what_cargo_linked_for_the_target(
        real_farm, built_chain, tmp_path):
    """The sign step's files, served by the farm: `farm verify` and Debian's minisign
    accept them; the SBOM lists exactly the crates cargo tree says are linked into a
    MIPS binary (no build-only crate, no proc macro); the provenance names the commit,
    the Cargo.lock and the image the build ran in."""
    from rustfarm.attestations import sbom_crates
    from tests.releases.test_signed_releases import minisign
    [result] = build(real_farm, "cli", MIPS_MUSL).values()
    assert result["results"] == 0, real_farm.step_log(result, "cargo build")[-3000:]
    steps = {s["name"]: s for s in real_farm.steps(result)}
    assert steps["sign"]["state_string"].startswith("signed (key "), steps["sign"]
    [signature_url] = [u for u in real_farm.artifact_urls(result)
                       if u.endswith("/SHA256SUMS.minisig")]
    base = signature_url.rsplit("/", 1)[0] + "/"
    keys = tmp_path / "keys.pub"
    keys.write_text(requests.get(real_farm.url + "plugins/artifacts/release-keys.pub",
                                 timeout=30).text)
    done = real_farm.farm("verify", base, "--key", str(keys))
    # The archive, the lock, a .deb (Debian's mips) and an .ipk (OpenWrt's mips_24kc),
    # the SBOM and the provenance.
    assert f"verified {MIPS_MUSL}: 6 files" in done.stdout
    assert "_mips.deb, " in done.stdout and "_mips_24kc.ipk, " in done.stdout
    for name in ("SHA256SUMS", "SHA256SUMS.minisig"):
        (tmp_path / name).write_bytes(requests.get(base + name, timeout=30).content)
    checked = subprocess.run([minisign(), "-V", "-p", str(keys), "-m", "SHA256SUMS"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    # What cargo itself says is linked for the target: normal dependencies, no proc macro.
    tree = subprocess.run(["cargo", "tree", "--locked", "--target", MIPS_MUSL, "--prefix",
                           "none", "-e", "normal,no-proc-macro", "--format", "{p}"],
                          cwd=FIXTURES / "cli-deps", capture_output=True, text=True,
                          env={**os.environ, "CARGO_HOME": str(tmp_path / "cargo-home")})
    assert tree.returncode == 0, tree.stderr
    expected = sorted({(line.split()[0], line.split()[1].lstrip("v"))
                       for line in tree.stdout.splitlines()
                       if line.strip() and "(/" not in line and "(*)" not in line})
    sbom = requests.get(base + "sbom.cdx.json", timeout=30).text
    assert sbom_crates(sbom) == expected
    assert "serde_derive" not in dict(expected) and "serde" in dict(expected)
    statement = requests.get(base + "provenance.intoto.json", timeout=30).json()
    definition = statement["predicate"]["buildDefinition"]
    named = {d.get("name"): d for d in definition["resolvedDependencies"]}
    lock = (FIXTURES / "cli-deps" / "Cargo.lock").read_bytes()
    assert named["Cargo.lock"]["digest"]["sha256"] == hashlib.sha256(lock).hexdigest()
    image_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}",
                               built_chain.reference(MIPS_MUSL)], capture_output=True,
                              text=True, check=True).stdout.strip()
    assert named["worker image"]["digest"]["sha256"] == image_id.partition(":")[2]
    assert definition["externalParameters"]["target"] == MIPS_MUSL


def test_an_auditable_project_s_binaries_carry_the_crates_its_sbom_lists(real_farm,
                                                                         built_chain,
                                                                         tmp_path):
    """`auditable: true` builds with cargo-auditable: each binary holds its dependency
    list (zig links MIPS musl, gcc MIPS64 gnu), which reads back as the crates the
    release's SBOM lists; the project's other builds embed nothing. Its dependencies
    come from the compile cache that a build without cargo-auditable filled."""
    from rustfarm.attestations import sbom_crates
    build(real_farm, "cli", MIPS_MUSL)
    builds = build(real_farm, "cli-audited", MIPS_MUSL, MIPS64_GNU)
    for triple, result in builds.items():
        assert result["results"] == 0, real_farm.step_log(result, "cargo build")[-3000:]
        assert "cargo auditable build" in real_farm.step_log(result, "cargo build")
        if triple == MIPS_MUSL:
            props = real_farm.api(f"builds/{result['buildid']}",
                                  property="compile_cache")["builds"][0]["properties"]
            cached = props["compile_cache"][0]
            assert cached["hits"] >= 20 and cached["misses"] == 0, cached
        binary = fetch_binary(real_farm, result, "cli-audited", tmp_path / triple)
        found = embedded_crates(built_chain.reference(triple), binary)
        assert found is not None, f"no dependency list in the {triple} binary"
        linked = sorted((p["name"], p["version"]) for p in found["packages"]
                        if p.get("kind", "runtime") == "runtime" and not p.get("root"))
        [sbom_url] = [u for u in real_farm.artifact_urls(result)
                      if u.endswith("/sbom.cdx.json")]
        assert linked == sbom_crates(requests.get(sbom_url, timeout=30).text)
        assert "serde" in dict(linked) and "serde_derive" not in dict(linked)
        assert json.loads(run_binary(built_chain, real_farm, result, "cli-audited", triple,
                                     tmp_path / "run"))["name"] == "mips"
    [plain] = build(real_farm, "cli", MIPS_MUSL).values()
    binary = fetch_binary(real_farm, plain, "cli-deps", tmp_path / "plain")
    assert embedded_crates(built_chain.reference(MIPS_MUSL), binary) is None

"""What the target images hold: their toolchain, std in rustc's sysroot, and no
program that raises privileges. (Builds of every target through the master are
in tests/docker.)"""

from __future__ import annotations

import json

import pytest

from rustfarm.targets import target_table
from tests.images.containers import run_crate

pytestmark = pytest.mark.docker

SCRIPT = """
rustc --version
test "$RUSTFARM_TOOLCHAIN" = "{toolchain}"
ls "$(rustc --print sysroot)/lib/rustlib/{triple}/lib/" | grep -c '^libstd-.*\\.rlib$'
{{ find / -xdev \\( -perm -4000 -o -perm -2000 \\) -type f 2>/dev/null || true; }} | sed 's/^/setuid: /'
"""
# cargo-auditable embeds the crates in the binary, whichever linker the target has
# (gcc, zig, mingw's, wasm's); rust-audit-info reads them back.
AUDITABLE = """
cargo auditable build --release --offline --target {triple} -q
built=target/{triple}/release/hello-arch
rust-audit-info "$(ls "$built" "$built.exe" "$built.wasm" 2>/dev/null | head -n 1)"
"""


@pytest.mark.parametrize("target", list(target_table()), ids=lambda t: t.triple)
def test_target_image_has_std_for_its_target_and_nothing_setuid(target, built_chain,
                                                                 docker_client):
    run = run_crate(docker_client, built_chain.reference(target.triple), "hello-arch",
                    SCRIPT.format(toolchain="1.96", triple=target.triple),
                    purpose=target.triple.split("-")[0])
    assert run.exit_code == 0, run.output[-2000:]
    lines = run.output.splitlines()
    assert lines[0].startswith("rustc 1.96.0")
    assert lines[1] == "1", "exactly one std for the target in the sysroot"
    assert not [line for line in lines if line.startswith("setuid: ")]


@pytest.mark.parametrize("target", list(target_table()), ids=lambda t: t.triple)
def test_cargo_auditable_embeds_the_crates_on_every_target(target, built_chain,
                                                           docker_client):
    run = run_crate(docker_client, built_chain.reference(target.triple), "hello-arch",
                    AUDITABLE.format(triple=target.triple),
                    purpose="audit-" + target.triple.split("-")[0])
    assert run.exit_code == 0, run.output[-2000:]
    embedded = json.loads(run.output.splitlines()[-1])
    assert [(p["name"], p.get("root")) for p in embedded["packages"]] == [("hello-arch", True)]


def test_debians_rust_163_image_has_its_own_toolchain(built_chain, docker_client):
    run = run_crate(docker_client, built_chain.reference("x86_64-unknown-linux-gnu@1.63"),
                    "hello-arch", SCRIPT.format(toolchain="1.63",
                                                triple="x86_64-unknown-linux-gnu"),
                    purpose="rust163")
    assert run.exit_code == 0, run.output[-2000:]
    assert run.output.splitlines()[0].startswith("rustc 1.63.0")

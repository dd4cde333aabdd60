"""ami/rustfarm-ami.pkr.json passes a full ``packer validate``.

Packer reads ``*.pkr.json`` as HCL2 in JSON syntax. A full validate (not
``-syntax-only``) prepares the amazon-ebs builder and the provisioners, which
checks every builder option and that provisioned files exist, and it needs
no AWS access: it runs here without credentials or network. The last test
proves it, by showing that a misspelt option fails it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.docker_engine import unavailable

from .harness import REPO_ROOT

AMI = REPO_ROOT / "ami"
TEMPLATE = AMI / "rustfarm-ami.pkr.json"
UBUNTU = {
    "ssh_username": "ubuntu",
    "root_device_name": "/dev/sda1",
    "source_ami_owner": "099720109477",
    "source_ami_name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
}


def packer_validate(template: Path, tmp_path: Path, variables: dict[str, str] | None = None):
    packer = shutil.which("packer")
    if not packer:
        unavailable("packer is not installed")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(CHECKPOINT_DISABLE="1", HOME=str(tmp_path), PACKER_LOG="")
    args = [packer, "validate"]
    for name, value in (variables or {}).items():
        args += ["-var", f"{name}={value}"]
    # From another directory, so that the template's own paths are what counts.
    return subprocess.run(args + [str(template)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_template_is_json():
    template = json.loads(TEMPLATE.read_text())
    assert template["source"]["amazon-ebs"]["worker"]["source_ami_filter"]["owners"] == [
        "${var.source_ami_owner}"]
    assert template["variable"]["source_ami_owner"]["default"] == "136693071363"


def test_packer_validate(tmp_path):
    validated = packer_validate(TEMPLATE, tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_packer_validate_for_ubuntu(tmp_path):
    validated = packer_validate(TEMPLATE, tmp_path, UBUNTU)
    assert validated.returncode == 0, validated.stdout + validated.stderr


@pytest.mark.parametrize("broken, complaint", [
    (('"instance_type": "${var.instance_type}"', '"instance_typo": "${var.instance_type}"'),
     "instance_typo"),
    (('/provision.sh"', '/provision-missing.sh"'), "provision-missing.sh"),
], ids=["misspelt-option", "missing-script"])
def test_packer_validate_is_a_real_check(tmp_path, broken, complaint):
    copy = tmp_path / "ami"
    shutil.copytree(AMI, copy)
    template = copy / TEMPLATE.name
    text = template.read_text()
    assert broken[0] in text
    template.write_text(text.replace(broken[0], broken[1], 1))
    validated = packer_validate(template, tmp_path)
    assert validated.returncode != 0
    assert complaint in validated.stdout + validated.stderr

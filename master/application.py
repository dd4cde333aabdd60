"""The master's twistd application: what its buildbot.tac (written by `farm up`,
cli/tacfiles.py) serves, with the settings of master.json beside it. Neither file
names a secret: the master reads its configuration through $RUSTFARM_CONFIG."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rustfarm.names import MASTER_SETTINGS_FILE as SETTINGS
from rustfarm.plumbing import log_in_basedir

from .buildmaster import FarmMaster


def serve_master(application, tac_file: str) -> tuple[str, str]:
    """Add the farm's master to ``application``; its base directory and configuration
    file, which Buildbot's commands read back from the .tac's names."""
    basedir = Path(tac_file).resolve().parent
    settings = json.loads((basedir / SETTINGS).read_text())
    os.environ["RUSTFARM_CONFIG"] = settings["farm_yaml"]
    os.environ["RUSTFARM_MASTER"] = settings["master"]
    log_in_basedir(application, basedir)
    master = FarmMaster(str(basedir), settings["configfile"], None)
    master.setServiceParent(application)
    master.log_rotation.rotateLength = 10_000_000
    master.log_rotation.maxRotatedFiles = 10
    return str(basedir), settings["configfile"]

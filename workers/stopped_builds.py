"""For the farm's latent workers (before Buildbot's own in the bases): a build stopped
before it asked for its worker starts no container and no instance.

Buildbot stops a worker's start for a stopped build only while that start runs
(``Build.stopBuild`` during the substantiation). A stop that comes earlier, while the
build still prepares, is seen only once the worker is up: a container would start, or
an EC2 instance boot, for a build that has already ended. Asked to start for a build
already stopped, the worker declines, and Buildbot ends the build as stopped.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.python import log


class NothingStartsForStoppedBuilds:
    def substantiate(self, wfb, build):
        if build is not None and getattr(build, "stopped", False) is True:
            log.msg(f"{self.name}: nothing started for {wfb.builder_name}'s build, "
                    "stopped before it asked for a worker")
            return defer.succeed(False)
        return super().substantiate(wfb, build)

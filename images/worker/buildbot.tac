# Buildbot worker configuration, run by twistd from the worker directory, where
# rustfarm-worker (entrypoint.sh) copies it. Settings come from the environment
# and the password from the file .workerpass, which is deleted once read.
import fnmatch
import os
import sys

from buildbot_worker.bot import Worker
from twisted.application import service
from twisted.internet import reactor

basedir = os.path.dirname(os.path.abspath(__file__))
buildmaster = os.environ["BUILDMASTER"]
port = int(os.environ["BUILDMASTER_PORT"])
protocol = os.environ.get("BUILDMASTER_PROTOCOL", "pb")
workername = os.environ["WORKERNAME"]
maxretries = int(os.environ.get("RUSTFARM_WORKER_MAXRETRIES", "5")) or None

passfile = os.path.join(basedir, ".workerpass")
with open(passfile) as f:
    passwd = f.read()
os.remove(passfile)

# Build steps inherit this process's environment: keep out the password and
# whatever WORKER_ENVIRONMENT_BLACKLIST names, as Buildbot's own image does.
blacklist = os.environ.get("WORKER_ENVIRONMENT_BLACKLIST", "").split() + ["WORKERPASS"]
for name in list(os.environ):
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in blacklist):
        del os.environ[name]

application = service.Application("buildbot-worker")
worker = Worker(buildmaster, port, workername, passwd, basedir, keepalive=600,
                umask=0o022, maxRetries=maxretries, protocol=protocol)
worker.setServiceParent(application)


def exit_if_never_connected():
    # buildbot-worker stops the reactor after maxretries failed attempts and
    # twistd then exits 0; a worker that never reached its master must fail.
    # A stop by signal (docker stop) keeps twistd's own exit.
    if getattr(reactor, "_exitSignal", None) is not None or protocol != "pb":
        return
    if worker.bf.perspective is None:
        sys.stdout.flush()
        tries = f" after {maxretries} attempts" if maxretries else ""
        sys.stderr.write("rustfarm-worker: could not reach the buildmaster at"
                         f" {buildmaster}:{port}{tries}\n")
        sys.stderr.flush()
        os._exit(3)


reactor.addSystemEventTrigger("after", "shutdown", exit_if_never_connected)

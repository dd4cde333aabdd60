# Buildbot worker configuration, run by twistd from the worker directory, where
# rustfarm-worker (entrypoint.sh) copies it. Settings come from the environment
# and the password from the file .workerpass, which is deleted once read.
# RUSTFARM_MASTER_SOCKET, when set, is the master's worker port as a Unix socket
# mounted into a container that has no network at all.
import ctypes
import fnmatch
import os
import sys

from buildbot_worker.bot import Worker
from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import reactor
from twisted.internet.endpoints import HostnameEndpoint

basedir = os.path.dirname(os.path.abspath(__file__))
buildmaster = os.environ["BUILDMASTER"]
port = int(os.environ["BUILDMASTER_PORT"])
protocol = os.environ.get("BUILDMASTER_PROTOCOL", "pb")
workername = os.environ["WORKERNAME"]
maxretries = int(os.environ.get("RUSTFARM_WORKER_MAXRETRIES", "5")) or None
socket = os.environ.get("RUSTFARM_MASTER_SOCKET")

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

# Builds run as this process's user and are its children. Not dumpable, its
# memory, environment and open files under /proc/<pid> belong to root and need
# CAP_SYS_PTRACE, which the farm's containers do not have: a build cannot read
# the password back out of the worker.
PR_SET_DUMPABLE = 4
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
    sys.exit("rustfarm-worker: prctl(PR_SET_DUMPABLE) failed; not starting")

application = service.Application("buildbot-worker")
if socket:
    worker = Worker(None, None, workername, passwd, basedir, keepalive=600, umask=0o022,
                    maxRetries=maxretries, protocol=protocol,
                    connection_string=f"unix:path={socket}")
else:
    worker = Worker(buildmaster, port, workername, passwd, basedir, keepalive=600,
                    umask=0o022, maxRetries=maxretries, protocol=protocol)
    if protocol == "pb":
        # A remote command is several small messages in turn; with Nagle's algorithm
        # each small write waits for the master to acknowledge the last one, which
        # Linux delays by up to 40 ms. Worker's own connection keeps the algorithm:
        # the same connection, retried the same way, with it turned off.
        def send_promptly(protocol):
            protocol.transport.setTcpNoDelay(True)

        def retry(attempt):
            if maxretries and attempt >= maxretries:
                reactor.stop()
            return backoffPolicy()(attempt)

        [own] = [s for s in worker.services if isinstance(s, ClientService)]
        worker.removeService(own)
        ClientService(HostnameEndpoint(reactor, buildmaster, port), worker.bf,
                      retryPolicy=retry, prepareConnection=send_promptly
                      ).setServiceParent(worker)
worker.setServiceParent(application)
del passwd


def exit_if_never_connected():
    # buildbot-worker stops the reactor after maxretries failed attempts and
    # twistd then exits 0; a worker that never reached its master must fail.
    # A stop by signal (docker stop) keeps twistd's own exit.
    if getattr(reactor, "_exitSignal", None) is not None or protocol != "pb":
        return
    if worker.bf.perspective is None:
        sys.stdout.flush()
        tries = f" after {maxretries} attempts" if maxretries else ""
        where = socket or f"{buildmaster}:{port}"
        sys.stderr.write(f"rustfarm-worker: could not reach the buildmaster at {where}{tries}\n")
        sys.stderr.flush()
        os._exit(3)


reactor.addSystemEventTrigger("after", "shutdown", exit_if_never_connected)

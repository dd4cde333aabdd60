"""A second Docker engine for tests, beside the system's: its own dockerd with its own
data root, exec root, pid file and Unix socket, and a TCP listener with TLS (client
certificates required) on a loopback address.

It never touches the system engine or the machine's network: it runs in a network
namespace of its own (socat carries its TLS port and the ports it must reach, such as
the farm's registry, across), with no bridge (``--bridge=none``), no iptables or
ip6tables rules and its own empty daemon.json. Its containers can therefore only run
without network, which is how the farm runs containers on an engine of this machine
anyway.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .docker_engine import unavailable
from .registry import free_port

START_WAIT = 60


def write_tls_files(directory: Path, address: str = "127.0.0.1") -> tuple[Path, Path]:
    """A CA, a server certificate for 127.0.0.1, localhost and ``address``, and a client
    certificate,
    as dockerd --tlsverify and a Docker client (DOCKER_CERT_PATH) want them. Returns the
    server's and the client's directories (each with ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(common: str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def certificate(subject, public_key, issuer, issuer_key, extensions):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = key()
    ca_name = name("rustfarm test engine CA")
    ca = certificate(ca_name, ca_key.public_key(), ca_name, ca_key,
                     [(x509.BasicConstraints(ca=True, path_length=None), True)])
    server_key, client_key = key(), key()
    server = certificate(name("127.0.0.1"), server_key.public_key(), ca_name, ca_key, [
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(a))
                                      for a in sorted({"127.0.0.1", address})]
                                     + [x509.DNSName("localhost")]), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    client = certificate(name("rustfarm"), client_key.public_key(), ca_name, ca_key,
                         [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)])

    def write(where: Path, cert, private_key) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        (where / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (where / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (where / "key.pem").write_bytes(private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        os.chmod(where / "key.pem", 0o600)
        return where

    return (write(directory / "server", server, server_key),
            write(directory / "client", client, client_key))


# dockerd's TLS port inside its own network namespace.
ENGINE_PORT = 2376
# The gateway of the bridge dockerd makes in its namespace (Docker's default).
GATEWAY = "172.17.0.1"


def machine_address() -> str:
    """An address of this machine that is not loopback (a farm takes an engine there
    for a remote one)."""
    listed = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                            capture_output=True, text=True).stdout.split("\n")
    found = [line.split()[3].split("/")[0] for line in listed if len(line.split()) > 3]
    if not found:
        unavailable("this machine has no address besides loopback")
    return found[0]


class SecondEngine:
    """``start()`` a dockerd of its own; ``stop()`` it (``start()`` again keeps its
    images); ``remove()`` stops it and deletes everything it had."""

    def __init__(self, reaches: tuple[int, ...] = (), address: str = "127.0.0.1"):
        # Ports of this machine's loopback the engine reaches (the farm's registry).
        self.reaches = tuple(reaches)
        # Ports of this machine's loopback its containers reach at their bridge's
        # gateway (GATEWAY): set before start() for an engine the farm sees as remote
        # (``address`` not loopback), whose workers connect to the master over TCP.
        self.serves: tuple[int, ...] = ()
        self.address = address
        # Short paths: containerd's sockets live under the exec root.
        self.root = Path(tempfile.mkdtemp(prefix="rf-engine-"))
        self.socket = self.root / "docker.sock"
        self.pidfile = self.root / "dockerd.pid"
        self.log = self.root / "dockerd.log"
        self.port = free_port()
        self.url = f"tcp://{address}:{self.port}"
        self.unix_url = f"unix://{self.socket}"
        self.server_tls, self.client_tls = write_tls_files(self.root / "tls", address)
        self.config = self.root / "daemon.json"
        self.config.write_text(json.dumps({}))
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """dockerd in a network namespace of its own, whose loopback is not this
        machine's: a dockerd without a bridge removes the default bridge interface
        (docker0) of the namespace it starts in, which would cut the system engine's
        containers off. socat carries its TLS port out to this machine's loopback, and
        the ports it reaches (the registry) in, each through a Unix socket."""
        tls = self.server_tls
        inside = [f"socat UNIX-LISTEN:{self.root}/tls.sock,fork TCP:127.0.0.1:{ENGINE_PORT} &"]
        inside += [f"socat TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr "
                   f"UNIX-CONNECT:{self.root}/in-{port}.sock &" for port in self.reaches]
        inside += [f"socat TCP-LISTEN:{port},fork,reuseaddr "
                   f"UNIX-CONNECT:{self.root}/in-{port}.sock &" for port in self.serves]
        # Without ports to serve its containers have no network at all; with them, a
        # bridge of the namespace's own (no NAT: they reach its gateway alone).
        bridge = [] if self.serves else ["--bridge=none"]
        dockerd = ["dockerd", "--config-file", str(self.config),
                   "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                   "--pidfile", str(self.pidfile),
                   "-H", self.unix_url, "-H", f"tcp://127.0.0.1:{ENGINE_PORT}",
                   "--tlsverify", "--tlscacert", str(tls / "ca.pem"),
                   "--tlscert", str(tls / "cert.pem"), "--tlskey", str(tls / "key.pem"),
                   *bridge, "--iptables=false", "--ip6tables=false", "--ip-masq=false"]
        script = "ip link set lo up\n" + "\n".join(inside) + "\nexec " + " ".join(dockerd)
        return ["unshare", "--net", "--", "sh", "-c", script]

    def forwarders(self) -> list[list[str]]:
        """The socat processes on this machine's side of the engine's namespace."""
        return [["socat", f"TCP-LISTEN:{self.port},bind={self.address},fork,reuseaddr",
                 f"UNIX-CONNECT:{self.root}/tls.sock"]] + [
            ["socat", f"UNIX-LISTEN:{self.root}/in-{port}.sock,fork", f"TCP:127.0.0.1:{port}"]
            for port in (*self.reaches, *self.serves)]

    def start(self) -> "SecondEngine":
        if os.geteuid() != 0 or not all(shutil.which(c) for c in ("dockerd", "unshare", "socat")):
            unavailable("a second Docker engine needs root, dockerd, unshare and socat")
        for stale in self.root.glob("*.sock"):
            if stale != self.socket:
                stale.unlink()
        with self.log.open("ab") as out:
            self.helpers = [subprocess.Popen(c, stdout=out, stderr=out, start_new_session=True)
                            for c in self.forwarders()]
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=out,
                                            start_new_session=True)
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.docker("version", "--format", "{{.Server.Version}}").returncode == 0:
                return self
            time.sleep(0.3)
        tail = self.log.read_text(errors="replace")[-1500:]
        self.stop()
        unavailable(f"a second dockerd did not start ({self.log}):\n{tail}")
        return self

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """The docker command against this engine, through its Unix socket."""
        return subprocess.run(["docker", "-H", self.unix_url, *args], capture_output=True,
                              text=True, timeout=timeout)

    def tls_docker_env(self) -> dict[str, str]:
        """What a Docker client needs to reach the engine over TCP with TLS."""
        return {"DOCKER_HOST": self.url, "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(self.client_tls)}

    def containers(self) -> list[str]:
        listed = self.docker("ps", "-a", "--format", "{{.Names}}")
        return listed.stdout.split()

    def stop(self) -> None:
        process, self.process = self.process, None
        helpers, self.helpers = getattr(self, "helpers", []), []
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process is not None:
            # The socat processes inside the engine's namespace share its process group.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for helper in helpers:
            helper.kill()
            helper.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        # A stopped engine may leave the mounts of its containers' layers behind.
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts if str(self.root) in line]
        for point in sorted(points, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


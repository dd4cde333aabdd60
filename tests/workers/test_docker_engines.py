"""A docker pool over several engines: which worker uses which engine and how its
containers reach the master, and how the farm skips an engine that does not answer."""

from __future__ import annotations

from pathlib import Path

from twisted.python import log

from rustfarm.farmfile import loads
from rustfarm.master.configuration import buildmaster_config
from rustfarm.plumbing import client_args, ping
from rustfarm.workers.engines import EngineWatch

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "hello"


def farm(tmp_path: Path, engines: str, extra: str = "", pool_extra: str = ""):
    tls = tmp_path / "tls"
    tls.mkdir(exist_ok=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tls / name).write_text("x")
    return loads(f"""\
farm: {{name: demo, worker_port: 19989{extra}}}
workers:
  dk:
    kind: docker
    count: 3
    image_registry: 127.0.0.1:5000
    docker_hosts: {engines}
{pool_extra}targets:
  x86_64-unknown-linux-gnu: {{pool: dk, image: "rustfarm/x86_64-unknown-linux-gnu:1.96-x"}}
projects:
  hello: {{source: {EXAMPLE}}}
""", tmp_path / "farm.yaml")


def workers_by_name(config) -> dict:
    return {w.name: w._config_kwargs for w in config["workers"]}


def test_workers_take_the_engines_in_turn_and_loopback_ones_use_the_socket(tmp_path):
    config = buildmaster_config(farm(
        tmp_path, '[unix:///var/run/docker.sock, {url: "tcp://127.0.0.1:2376", tls: tls}]'))
    workers = workers_by_name(config)
    assert {name: w["docker_host"] for name, w in workers.items()} == {
        "dk-1": "unix:///var/run/docker.sock", "dk-2": "tcp://127.0.0.1:2376",
        "dk-3": "unix:///var/run/docker.sock"}
    assert workers["dk-2"]["engine_tls"] == str(tmp_path / "tls")
    assert workers["dk-2"]["image_registry"] == "127.0.0.1:5000"
    # Its containers read the crate store in place, mounted where this property says.
    assert workers["dk-2"]["properties"] == {"pool": "dk", "docker_engine": "tcp://127.0.0.1:2376",
                                             "crate_store": "/home/rustbuild/crates"}
    for worker in workers.values():
        # Both engines are on this machine: no network, the master through its socket.
        assert worker["hostconfig"]["network_mode"] == "none"
        assert worker["worker_socket"]
        assert any(str(v).endswith(":/run/rustfarm:ro") for v in worker["volumes"])
    services = {s.name for s in config["services"]}
    assert {"worker-socket", "docker-engines"} <= services


def test_a_remote_engine_among_local_ones_keeps_the_network_path(tmp_path):
    config = buildmaster_config(farm(
        tmp_path, '[unix:///var/run/docker.sock, "tcp://10.1.2.3:2376"]',
        extra=", master_address: 10.1.2.1"))
    workers = workers_by_name(config)
    assert "network_mode" not in workers["dk-2"]["hostconfig"]
    assert "worker_socket" not in workers["dk-2"]
    assert workers["dk-2"]["masterFQDN"] == "10.1.2.1:19989"
    assert workers["dk-1"]["hostconfig"]["network_mode"] == "none"
    # The remote engine's containers cannot see the crate store: they are sent copies.
    assert "crate_store" not in workers["dk-2"]["properties"]
    assert not any("crates:ro" in str(v) for v in workers["dk-2"]["volumes"])
    assert workers["dk-1"]["properties"]["crate_store"] == "/home/rustbuild/crates"


def test_client_arguments_for_tls_and_ssh(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    args = client_args("tcp://127.0.0.1:2376", str(tmp_path))
    assert args["base_url"] == "tcp://127.0.0.1:2376"
    assert args["tls"].cert == (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    assert args["tls"].ca_cert == str(tmp_path / "ca.pem") and args["tls"].verify is True
    assert client_args("ssh://farm@build2")["use_ssh_client"] is True
    assert "tls" not in client_args("unix:///var/run/docker.sock")


def test_ping_says_why_an_engine_does_not_answer(tmp_path):
    why = ping(f"unix://{tmp_path}/nothing.sock", timeout=2)
    assert why


class FakeWorker:
    def __init__(self):
        self.quarantine_timer = object()
        self.left_quarantine = False

    def stopQuarantineTimer(self):
        self.left_quarantine = True


class FakeMaster:
    def __init__(self, workers):
        self.workers = type("Manager", (), {"workers": workers})()
        self.woken = []
        self.botmaster = type("Botmaster", (), {
            "maybeStartBuildsForWorker": lambda _, name: self.woken.append(name)})()


def test_an_engine_that_fails_is_skipped_until_it_answers_again():
    watch = EngineWatch([("unix:///a.sock", "", "dk", ("dk-1", "dk-3")),
                         ("tcp://127.0.0.1:2376", "", "dk", ("dk-2",))])
    dk2 = FakeWorker()
    watch.parent = type("Parent", (), {"master": FakeMaster({"dk-2": dk2})})()
    watch.reconfigService([("unix:///a.sock", "", "dk", ("dk-1", "dk-3")),
                           ("tcp://127.0.0.1:2376", "", "dk", ("dk-2",))])
    messages = []
    log.addObserver(messages.append)
    try:
        watch.engine_failed("tcp://127.0.0.1:2376", "connection refused")
        assert not watch.answers("tcp://127.0.0.1:2376") and watch.answers("unix:///a.sock")
        [skipped] = watch.skipped("dk")
        assert skipped.startswith("tcp://127.0.0.1:2376 (does not answer since ")
        assert watch.skipped("other") == []
        watch._mark("tcp://127.0.0.1:2376", "")      # the next ping answers
        assert watch.answers("tcp://127.0.0.1:2376") and dk2.left_quarantine
    finally:
        log.removeObserver(messages.append)
    said = [" ".join(m.get("message", ())) for m in messages]
    assert ("Docker engine tcp://127.0.0.1:2376 of pool dk does not answer (connection "
            "refused): skipped; its workers dk-2 take no builds until it answers again "
            "(asked every 10 s)") in said
    assert "Docker engine tcp://127.0.0.1:2376 of pool dk answers again: its workers dk-2 " \
           "take builds" in said


def test_an_engine_error_says_why_in_a_few_words():
    import requests
    from rustfarm.plumbing import engine_error
    wrapped = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='127.0.0.1', port=2376): Max retries exceeded with url: "
        "/version (Caused by NewConnectionError(\"HTTPSConnection(host='127.0.0.1', "
        "port=2376): Failed to establish a new connection: [Errno 111] Connection refused\"))")
    assert engine_error(wrapped) == "[Errno 111] Connection refused"
    assert engine_error(RuntimeError("certificate verify failed")) == "certificate verify failed"


def test_farm_up_goes_on_while_one_engine_of_a_pool_answers(tmp_path, capsys):
    from rustfarm.cli.docker_probe import probe
    from tests.support.docker_engine import require_docker
    from tests.support.registry import free_port
    port = free_port()      # nothing listens there
    down = farm(tmp_path, f'[unix://{tmp_path}/none.sock, "tcp://127.0.0.1:{port}"]')
    runtime = probe(down)
    assert not runtime.docker
    assert runtime.docker_off_reason.startswith(f"no Docker engine answers at tcp://127.0.0.1:{port}")
    require_docker()
    half = farm(tmp_path, f'[unix:///var/run/docker.sock, "tcp://127.0.0.1:{port}"]')
    assert probe(half).docker
    assert (f"pool dk: no Docker engine answers at tcp://127.0.0.1:{port}: [Errno 111] "
            "Connection refused; skipped until it answers") in capsys.readouterr().out


class Clock:
    def __init__(self, now: float):
        self.now = now
        self.calls = []

    def seconds(self) -> float:
        return self.now

    def callLater(self, delay, function, *args):
        call = type("Call", (), {"active": lambda _: True, "delay": delay,
                                 "args": (function, args)})()
        self.calls.append(call)
        return call


def engine_farm(engines):
    """A watch over ``engines`` and a builder of its pool, at time 1000."""
    watch = EngineWatch(engines)
    master = FakeMaster({})
    master.reactor = Clock(1000.0)
    master.botmaster.maybeStartBuildsOn = lambda names: None
    master.service_manager = type("Manager", (), {"namedServices": {watch.name: watch}})()
    watch.parent = type("Parent", (), {"master": master})()
    watch.reconfigService(engines)
    return watch, master


def worker_for_builder(name: str, url: str, building=()):
    worker = type("Worker", (), {"engine": url, "name": name, "building": set(building)})()
    return type("WorkerForBuilder", (), {"worker": worker})()


def request(submitted: float):
    return type("BuildRequest", (), {"submittedAt": submitted})()


def test_a_builder_goes_back_to_the_engine_of_its_last_build():
    from rustfarm.workers.engines import WarmEngineFirst

    local, remote = "unix:///a.sock", "tcp://127.0.0.1:2376"
    watch, master = engine_farm([(local, "", "dk", ("dk-1",)), (remote, "", "dk", ("dk-2",))])
    dk1, dk2 = worker_for_builder("dk-1", local), worker_for_builder("dk-2", remote)
    builder = type("Builder", (), {"master": master, "name": "hello:mips",
                                   "workers": [dk1, dk2]})()
    choose = WarmEngineFirst(wait=30)
    fresh = request(1000)
    assert choose(builder, [], fresh) is None
    # No build yet: any free worker.
    assert {choose(builder, [dk1, dk2], fresh) for _ in range(200)} == {dk1, dk2}
    watch.built_on("hello:mips", remote)
    assert {choose(builder, [dk1, dk2], fresh) for _ in range(50)} == {dk2}
    # Its engine's worker is free but taken by another builder's build meanwhile: the
    # request waits for it, and is offered again when the wait is over.
    dk2.worker.building = {"other:mips"}
    assert choose(builder, [dk1], request(990)) is None
    [call] = master.reactor.calls
    assert call.delay == 20 and call.args[1] == (["hello:mips"],)
    assert choose(builder, [dk1], request(990)) is None
    assert len(master.reactor.calls) == 1           # one pending offer per builder
    # Waited long enough: another free worker takes it.
    assert choose(builder, [dk1], request(970)) is dk1
    # Its engine's worker is not building (quarantined, or gone): no wait.
    dk2.worker.building = set()
    assert choose(builder, [dk1], fresh) is dk1
    # A pool that never waits.
    dk2.worker.building = {"other:mips"}
    assert WarmEngineFirst(wait=0)(builder, [dk1], fresh) is dk1
    # Its engine does not answer: any free worker.
    watch.engine_failed(remote, "connection refused")
    assert {choose(builder, [dk1, dk2], fresh) for _ in range(200)} == {dk1, dk2}


def test_only_a_pool_over_several_engines_chooses_workers_by_engine(tmp_path):
    from rustfarm.workers.engines import WarmEngineFirst
    from rustfarm.workers.rebuild_choice import ElsewhereFirst
    from rustfarm.workers.standby import StandbyFirst

    # Every builder sends a release's rebuild elsewhere first, then chooses as its pool does.
    several = buildmaster_config(farm(
        tmp_path, '[unix:///var/run/docker.sock, {url: "tcp://127.0.0.1:2376", tls: tls}]'))
    assert {b.nextWorker for b in several["builders"]} == {
        ElsewhereFirst(StandbyFirst(WarmEngineFirst(30)))}
    waits = buildmaster_config(farm(
        tmp_path, '[unix:///var/run/docker.sock, {url: "tcp://127.0.0.1:2376", tls: tls}]',
        pool_extra="    warm_engine_wait: 0\n    standby: 0\n"))
    assert {b.nextWorker for b in waits["builders"]} == {ElsewhereFirst(WarmEngineFirst(0))}
    one = buildmaster_config(farm(tmp_path, "[unix:///var/run/docker.sock]"))
    assert {b.nextWorker for b in one["builders"]} == {ElsewhereFirst(StandbyFirst(None))}
    none = buildmaster_config(farm(tmp_path, "[unix:///var/run/docker.sock]",
                                   pool_extra="    standby: 0\n"))
    assert {b.nextWorker for b in none["builders"]} == {ElsewhereFirst(None)}


def test_a_worker_whose_container_never_started_takes_any_builder_s_build_again(tmp_path):
    """A start that fails before its container exists leaves no container to stop;
    the worker must not stay bound to that build's properties (its project's cache
    volume), or it refuses every other builder's build."""
    from rustfarm.workers.docker import FarmDockerLatentWorker

    config = buildmaster_config(farm(
        tmp_path, '[unix:///var/run/docker.sock, {url: "tcp://127.0.0.1:2376", tls: tls}]'))
    [kwargs] = [w._config_kwargs for w in config["workers"] if w.name == "dk-2"]
    worker = FarmDockerLatentWorker("dk-2", "password", **{
        k: v for k, v in kwargs.items() if k != "password"})
    worker.rendered_worker_props = {"volumes": ["rustfarm-demo-hello-again:/cache"]}
    assert worker.instance is None
    done = []
    worker.stop_instance().addCallback(done.append)
    assert done == [None]
    assert worker.rendered_worker_props is None

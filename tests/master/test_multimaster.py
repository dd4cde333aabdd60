"""Each master of a multi-master farm: its own ports, Buildbot's multi-master mode and
the WAMP message queue; a farm of one master keeps Buildbot's defaults."""

from __future__ import annotations

from pathlib import Path

from buildbot.process.properties import Properties

from rustfarm.farmfile import loads
from rustfarm.master.configuration import buildmaster_config
from rustfarm.master.failover import MasterFailover
from rustfarm.master.farm_file import CONFIG_ENV, MASTER_ENV, load_farm
from rustfarm.names import FARM_PROPERTY, IMAGE_PROPERTY, PROJECT_PROPERTY, TARGET_PROPERTY
from rustfarm.workers.docker_volumes import CACHE_DIR, cache_volume_name, image_label

REPO = Path(__file__).resolve().parents[2]

FARM = f"""\
farm: {{name: multi, worker_port: 9300}}
www: {{port: 8300}}
db: {{url: 'postgresql://farm@127.0.0.1:5433/farm'}}
masters: 2
router: {{url: 'ws://127.0.0.1:8399/ws', realm: farm}}
workers:
  local: {{kind: local, count: 1}}
targets:
  x86_64-unknown-linux-gnu: {{pool: local}}
projects:
  hello: {{source: {REPO / 'examples' / 'hello'}}}
"""

# The same farm with a docker pool instead of the local one.
IMAGE = "rustfarm/x86_64-unknown-linux-gnu:1.96-0123456789ab"
DOCKER_FARM = FARM.replace("  local: {kind: local, count: 1}\n",
                           "  dk: {kind: docker, count: 1}\n").replace(
    "x86_64-unknown-linux-gnu: {pool: local}",
    f'x86_64-unknown-linux-gnu: {{pool: dk, image: "{IMAGE}"}}')


def test_each_master_serves_its_own_ports_in_multi_master_mode(tmp_path, monkeypatch):
    (tmp_path / "farm.yaml").write_text(FARM)
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "farm.yaml"))
    monkeypatch.setenv(MASTER_ENV, "master-2")
    farm = load_farm()
    assert (farm.www.port, farm.farm.worker_port, farm.farm.url) == \
        (8301, 9301, "http://127.0.0.1:8301/")
    config = buildmaster_config(farm)
    assert config["multiMaster"] is True
    assert config["mq"] == {"type": "wamp", "router_url": "ws://127.0.0.1:8399/ws",
                            "realm": "farm", "wamp_debug_level": "error"}
    assert config["protocols"]["pb"]["port"].startswith("tcp:9301:")
    assert config["www"]["port"].startswith("tcp:8301:")
    assert config["buildbotURL"] == "http://127.0.0.1:8301/"
    # The artifact store is the farm's, shared by its masters.
    assert config["www"]["plugins"]["artifacts"]["directory"] == \
        str(tmp_path / ".farm" / "artifacts")


def test_the_first_master_when_none_is_named(tmp_path, monkeypatch):
    (tmp_path / "farm.yaml").write_text(FARM)
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "farm.yaml"))
    monkeypatch.delenv(MASTER_ENV, raising=False)
    assert load_farm().www.port == 8300


def test_one_master_keeps_buildbot_s_own_message_queue(tmp_path):
    text = FARM.replace("masters: 2\n", "").replace("router: {url: 'ws://127.0.0.1:8399/ws', "
                                                    "realm: farm}\n", "")
    config = buildmaster_config(loads(text, tmp_path / "farm.yaml"))
    assert "mq" not in config and "multiMaster" not in config


def test_buildbot_accepts_the_multi_master_configuration(tmp_path, monkeypatch):
    from buildbot.config.master import MasterConfig
    (tmp_path / "farm.yaml").write_text(FARM)
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "farm.yaml"))
    monkeypatch.setenv(MASTER_ENV, "master-1")
    loaded = MasterConfig.loadFromDict(buildmaster_config(load_farm()), "master.cfg")
    assert loaded.multiMaster and loaded.mq["type"] == "wamp"
    assert loaded.db.db_url.startswith("postgresql")


def test_each_of_several_masters_watches_its_peers_with_the_farm_s_timeout(tmp_path):
    config = buildmaster_config(loads(FARM + "failover: {master_timeout: 20}\n",
                                      tmp_path / "farm.yaml"))
    [failover] = [s for s in config["services"] if isinstance(s, MasterFailover)]
    assert failover.name == "master-failover"
    assert failover.getConfigDict()["kwargs"] == {"master_timeout": 20}


def test_one_master_has_no_peer_to_watch(tmp_path):
    text = FARM.replace("masters: 2\n", "").replace("router: {url: 'ws://127.0.0.1:8399/ws', "
                                                    "realm: farm}\n", "")
    config = buildmaster_config(loads(text, tmp_path / "farm.yaml"))
    assert not [s for s in config["services"] if isinstance(s, MasterFailover)]


def configs_of_each_master(tmp_path, monkeypatch, text: str) -> dict:
    """Buildbot's configuration of each of the farm's two masters."""
    (tmp_path / "farm.yaml").write_text(text)
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "farm.yaml"))
    configs = {}
    for name in ("master-1", "master-2"):
        monkeypatch.setenv(MASTER_ENV, name)
        configs[name] = buildmaster_config(load_farm())
    return configs


def test_each_master_on_one_machine_has_its_own_worker_socket(tmp_path, monkeypatch):
    """A container reaches the master that started it: two masters listening on one
    socket path would hand each other's containers to the wrong master."""
    seen = {}
    for name, config in configs_of_each_master(tmp_path, monkeypatch, DOCKER_FARM).items():
        [socket] = [s for s in config["services"] if s.name == "worker-socket"]
        [worker] = [w._config_kwargs for w in config["workers"]]
        path = socket._config_args[0]
        assert path == str(tmp_path / ".farm" / "run" / name / "worker.sock")
        assert worker["worker_socket"] == path
        assert worker["secret_dir"] == str(tmp_path / ".farm" / "container-secrets" / name / "dk-1")
        assert f"{Path(path).parent}:/run/rustfarm:ro" in worker["volumes"]
        seen[name] = path
    assert seen["master-1"] != seen["master-2"]


def rendered_cache_mount(worker: dict) -> str:
    props = Properties(**{FARM_PROPERTY: "multi", PROJECT_PROPERTY: "hello",
                          TARGET_PROPERTY: "x86_64-unknown-linux-gnu", IMAGE_PROPERTY: IMAGE})
    rendered = []
    props.render(worker["volumes"][0]).addCallback(rendered.append)
    return rendered[0]


def test_each_master_builds_in_cache_volumes_of_its_own(tmp_path, monkeypatch):
    """A builder's builds take turns on its cache volume by a master's lock, which no
    other master sees: two masters building one builder at once must not unpack two
    revisions into one volume. A farm of one master keeps the volume's name."""
    mounts = {}
    for name, config in configs_of_each_master(tmp_path, monkeypatch, DOCKER_FARM).items():
        [worker] = [w._config_kwargs for w in config["workers"]]
        mounts[name] = rendered_cache_mount(worker)
        assert mounts[name] == cache_volume_name("multi", "hello", "x86_64-unknown-linux-gnu",
                                                 IMAGE, name) + ":" + CACHE_DIR
    assert mounts["master-1"] != mounts["master-2"]

    one = (DOCKER_FARM.replace("masters: 2\n", "").replace(
        "router: {url: 'ws://127.0.0.1:8399/ws', realm: farm}\n", ""))
    (tmp_path / "farm.yaml").write_text(one)
    monkeypatch.delenv(MASTER_ENV)
    [worker] = [w._config_kwargs for w in buildmaster_config(load_farm())["workers"]]
    assert rendered_cache_mount(worker) == \
        f"rustfarm-multi-hello-x86_64-unknown-linux-gnu-{image_label(IMAGE)}-" \
        + cache_volume_name("multi", "hello", "x86_64-unknown-linux-gnu", IMAGE)[-10:] \
        + ":" + CACHE_DIR

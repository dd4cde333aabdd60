"""farm.yaml's settings sections (farm, www, db, schedule, artifacts, compile, crates), read
by FarmReader (loader.py)."""

from __future__ import annotations

import re

from .checks import (CONTAINER_POOLS, DEFAULT_STATE_DIR, artifact_directory_problem,
                     docker_name_check, email_check, host_port_check, registry_index_check,
                     state_dir_problem, time_check, toolchain_text, url_check)
from .errors import did_you_mean
from .forge_settings import NotifySettings
from .model import (COMPILE_PROJECT, ArtifactSettings, CompileSettings, DbSettings, FarmSettings,
                    Project, S3Artifacts, ScheduleSettings, Target, WwwSettings)
from .crate_source import CargoRegistry, CrateSource
from .pool_kinds import Pool
from .db_section import DB_KEYS, read_db
from .pools import size_bytes
from .reader import Section, type_name


class SettingsSections:
    def farm_settings(self, top: Section, www: WwwSettings) -> FarmSettings:
        s = self.section(top.raw("farm"), "farm",
                         ("name", "title", "url", "state_dir", "worker_port", "worker_host",
                          "master_address", "toolchain"), top.key_line("farm"))
        if not top.has("farm"):
            s.error(1, "farm", "missing required key")
        name = s.text("name", check=docker_name_check) or "farm"
        url = s.text("url", f"http://{www.host}:{www.port}/", check=url_check)
        worker_port = s.integer("worker_port", 9989, minimum=1, maximum=65535)
        if worker_port == www.port:
            ui = self.www_section
            line, key = ((ui.key_line("port"), "www.port") if ui.has("port") else
                         (s.key_line("worker_port"), "farm.worker_port"))
            s.error(line, key, f"www.port and farm.worker_port are both {www.port}: the web UI "
                               "and the workers need a port each")
        state_dir = (self.base / s.text("state_dir", DEFAULT_STATE_DIR)).resolve()
        problem = state_dir_problem(state_dir)
        if problem:
            s.error(s.key_line("state_dir"), "farm.state_dir", problem)
        self.state_dir_refused = bool(problem)
        return FarmSettings(
            name=name,
            title=s.text("title", name),
            url=url if url.endswith("/") else url + "/",
            worker_port=worker_port,
            worker_host=s.text("worker_host", ""),
            master_address=s.text("master_address", ""),
            state_dir=state_dir,
            toolchain=self.toolchain(s, "toolchain", self.table.default_toolchain),
        )

    def toolchain(self, s: Section, key: str, default: str) -> str:
        """A toolchain version the targets table knows, or ``default``."""
        if not s.has(key):
            return default
        raw = s.raw(key)
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            s.error(s.key_line(key), s.key_path(key),
                    f"must be a toolchain version such as \"1.96\", not {type_name(raw)}")
            return default
        version = toolchain_text(raw)
        if version not in self.table.toolchains:
            quoted = " (write it quoted, e.g. \"1.70\")" if isinstance(raw, float) else ""
            s.error(s.key_line(key), s.key_path(key),
                    f"unknown toolchain '{version}'{quoted}; toolchains: "
                    f"{', '.join(self.table.toolchains)}")
            return default
        return version

    def www(self, top: Section) -> WwwSettings:
        s = self.section(top.raw("www"), "www", ("host", "port", "users"), top.key_line("www"))
        self.www_section = s
        users = s.texts("users", ())
        for index, user in enumerate(users):
            if not re.match(r"^[A-Za-z0-9_.@-]+$", user):
                s.error(s.item_line("users", index), f"www.users[{index}]",
                        "user names use letters, digits, '.', '_', '@' and '-'")
        return WwwSettings(host=s.text("host", "127.0.0.1"),
                           port=s.integer("port", 8010, minimum=1, maximum=65535),
                           users=users)

    def db(self, top: Section, farm: FarmSettings, taken: dict[int, str]) -> DbSettings:
        return read_db(self.section(top.raw("db"), "db", DB_KEYS, top.key_line("db")),
                       farm.state_dir, taken)

    def schedule(self, top: Section) -> ScheduleSettings:
        s = self.section(top.raw("schedule"), "schedule", ("nightly",), top.key_line("schedule"))
        if s.has("nightly") and s.raw("nightly") in (None, False):
            return ScheduleSettings(nightly=None)
        value = s.text("nightly", "03:00", check=time_check)
        if not value or time_check(value):
            return ScheduleSettings(nightly=None)
        hour, minute = value.split(":")
        return ScheduleSettings(nightly=(int(hour), int(minute)))

    def artifacts(self, top: Section, farm: FarmSettings) -> ArtifactSettings:
        s = self.section(top.raw("artifacts"), "artifacts", ("directory", "keep", "s3"),
                         top.key_line("artifacts"))
        directory = (farm.state_dir / s.text("directory", "artifacts")).resolve()
        s3 = self.s3_artifacts(s) if s.has("s3") else None
        if s3 is not None and s.has("directory"):
            s.error(s.key_line("s3"), "artifacts.s3",
                    "the store is a directory or an S3 bucket: give directory or s3, not both")
        problem = artifact_directory_problem(directory, farm.state_dir, self.base)
        # A store left at its default is refused with its state directory, if that is.
        if s3 is None and problem and (s.has("directory") or not self.state_dir_refused):
            s.error(s.key_line("directory"), "artifacts.directory", problem)
        return ArtifactSettings(directory=directory, keep=s.integer("keep", 5, minimum=1),
                                s3=s3)

    def s3_artifacts(self, s: Section) -> S3Artifacts | None:
        bucket = self.section(s.raw("s3"), "artifacts.s3",
                              ("bucket", "prefix", "region", "endpoint_url"), s.key_line("s3"))
        name = bucket.text("bucket", check=_bucket_problem)
        prefix = bucket.text("prefix", "rustfarm/", check=_prefix_problem) or ""
        endpoint = bucket.text("endpoint_url", "", check=url_check) or ""
        region = bucket.text("region", "", check=lambda v: "" if re.fullmatch(
            r"[a-z]{2}(-[a-z]+)+-[0-9]", v) else f"not an AWS region name: '{v}'") or ""
        if not name:
            return None
        return S3Artifacts(bucket=name, prefix=prefix.strip("/") + "/" if prefix.strip("/")
                           else "", region=region, endpoint_url=endpoint)

    def compile(self, top: Section, farm: FarmSettings, www: WwwSettings,
                pools: dict[str, Pool], targets: dict[str, Target],
                projects: dict[str, Project]) -> CompileSettings:
        s = self.section(top.raw("compile"), "compile",
                         ("targets", "max_upload", "max_files", "max_unpacked", "queue", "keep",
                          "tessel_port", "tessel_target", "tessel_anonymous"),
                         top.key_line("compile"))
        # Uploads are anyone's code: they build only where a build cannot reach the host.
        isolated = [t for t, target in targets.items()
                    if pools.get(target.pool) and pools[target.pool].kind in CONTAINER_POOLS]
        chosen = s.texts("targets", tuple(isolated))
        for index, triple in enumerate(chosen or ()):
            if triple not in targets:
                s.error(s.item_line("targets", index), f"compile.targets[{index}]",
                        f"'{triple}' is not a target of this farm"
                        f"{did_you_mean(triple, targets)}")
            elif triple not in isolated:
                s.error(s.item_line("targets", index), f"compile.targets[{index}]",
                        f"'{triple}' builds on pool '{targets[triple].pool}', which runs builds "
                        "on this machine; uploads build only in containers (docker or ec2 "
                        "pools)")
        sizes = {}
        for key, default in (("max_upload", "50m"), ("max_unpacked", "500m")):
            raw = s.raw(key) if s.has(key) else default
            text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) \
                else None
            size = size_bytes(text) if text is not None else None
            if size is None or size < 1024:
                s.error(s.key_line(key), f"compile.{key}",
                        f"must be a size of at least 1k such as 50m, not '{text}'")
                size = size_bytes(default)
            sizes[key] = size
        tessel_port = s.integer("tessel_port", 0, minimum=0, maximum=65535)
        if tessel_port and tessel_port in (www.port, farm.worker_port):
            whose = "the web UI's" if tessel_port == www.port else "the workers'"
            s.error(s.key_line("tessel_port"), "compile.tessel_port",
                    f"port {tessel_port} is already {whose} port")
        default_tessel = next((t for t in ("mipsel-unknown-linux-musl",
                                           "mipsel-unknown-linux-gnu") if t in (chosen or ())),
                              "mipsel-unknown-linux-musl")
        tessel_target = s.text("tessel_target", default_tessel)
        if tessel_port and tessel_target not in (chosen or ()):
            s.error(s.key_line("tessel_target") or s.key_line("tessel_port"),
                    "compile.tessel_target", f"'{tessel_target}' is not one of compile.targets "
                    f"({', '.join(chosen or ()) or 'none'})")
        if COMPILE_PROJECT in projects:
            s.error(getattr(top.raw("projects"), "key_lines", {}).get(COMPILE_PROJECT, 0),
                    f"projects.{COMPILE_PROJECT}", f"the name '{COMPILE_PROJECT}' is the "
                    "compile endpoint's (its builders are compile:<target>); choose another")
        return CompileSettings(
            targets=tuple(chosen or ()),
            max_upload=sizes["max_upload"],
            max_files=s.integer("max_files", 20000, minimum=1),
            max_unpacked=sizes["max_unpacked"],
            queue=s.integer("queue", 8, minimum=1, maximum=1000),
            keep=s.integer("keep", 3600, minimum=60),
            tessel_port=tessel_port,
            tessel_target=tessel_target,
            tessel_anonymous=bool(s.flag("tessel_anonymous", False)),
        )

    def notify(self, top: Section) -> NotifySettings:
        """The SMTP relay of notification mail (projects' notify.email)."""
        s = self.section(top.raw("notify"), "notify", ("smtp", "from"), top.key_line("notify"))
        relay = s.text("smtp", "localhost:25", check=host_port_check)
        sender = s.text("from", "", check=lambda v: email_check(v) if v else "")
        if not isinstance(relay, str) or host_port_check(relay):
            relay = "localhost:25"
        host, port = (relay.rsplit(":", 1) if re.search(r":\d+$", relay) else (relay, "25"))
        return NotifySettings(smtp_host=host.strip("[]"), smtp_port=int(port),
                              sender=sender or "")

    def crates(self, top: Section) -> CrateSource:
        s = self.section(top.raw("crates"), "crates",
                         ("directory", "registry", "registries", "keep_days"),
                         top.key_line("crates"))
        keep_days = s.integer("keep_days", 30, minimum=0, maximum=36500)
        if s.has("directory") and s.has("registry"):
            s.error(s.line, "crates", "give either directory or registry, not both")
        registries = []
        for name, node, line in s.children("registries"):
            r = self.section(node, f"crates.registries.{name}", ("index", "token", "uploads"),
                             line)
            if name == "crates-io":
                r.error(line, f"crates.registries.{name}", "crates-io is crates.io itself; "
                        "a mirror of it is crates.registry")
            index = r.text("index", check=registry_index_check)
            registries.append(CargoRegistry(name, index or "", bool(r.flag("token", False)),
                                            bool(r.flag("uploads", False))))
        if s.has("directory"):
            return CrateSource("directory", s.text("directory"), tuple(registries), keep_days)
        if s.has("registry"):
            return CrateSource("registry", s.text("registry", check=registry_index_check),
                               tuple(registries), keep_days)
        return CrateSource("crates-io", registries=tuple(registries), keep_days=keep_days)


def _bucket_problem(name: str) -> str:
    if re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name) and ".." not in name:
        return ""
    return (f"'{name}' is not an S3 bucket name: 3 to 63 lower-case letters, digits, '.' "
            "and '-'")


def _prefix_problem(prefix: str) -> str:
    if prefix.startswith("/") or ".." in prefix.split("/") or "//" in prefix:
        return f"'{prefix}' is not a key prefix: no leading '/', no '..', no empty parts"
    return ""


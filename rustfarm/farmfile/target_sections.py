"""farm.yaml's workers and targets sections: the pools, and each target's pool, image
and runner, read by FarmReader (loader.py)."""

from __future__ import annotations

import re

from rustfarm.targets import HOST_TRIPLE, image_toolchain

from .checks import CONTAINER_POOLS, known_triples
from .errors import did_you_mean
from .model import Target
from .pool_kinds import Pool
from .pools import POOL_KEYS, POOL_KEYS_ALL, POOL_KINDS, POOL_READERS
from .reader import Section, type_name


class TargetSections:
    def pools(self, top: Section) -> dict[str, Pool]:
        pools: dict[str, Pool] = {}
        self.declared_pools = set()
        for name, node, line in top.children("workers"):
            self.declared_pools.add(name)
            kind = node.get("kind") if isinstance(node, dict) else None
            if kind in POOL_KINDS:
                s = self.section(node, f"workers.{name}", POOL_KEYS[kind], line)
                pools[name] = POOL_READERS[kind](name, s)
                continue
            s = self.section(node, f"workers.{name}", POOL_KEYS_ALL, line)
            if s.text("kind") is not None:
                s.error(s.key_line("kind"), f"workers.{name}.kind",
                        f"unknown pool kind '{kind}'{did_you_mean(str(kind), POOL_KINDS)}; "
                        f"kinds: {', '.join(POOL_KINDS)}")
        return pools

    def targets(self, top: Section, pools: dict[str, Pool],
                default_toolchain: str) -> dict[str, Target]:
        triples = known_triples()
        targets: dict[str, Target] = {}
        self.target_lines: dict[str, tuple[Section, int]] = {}
        for triple, node, line in top.children("targets"):
            s = self.section(node, f"targets.{triple}",
                             ("pool", "image", "linker", "runner", "env"), line)
            self.target_lines[triple] = (s, line)
            if triple not in triples:
                s.error(line, f"targets.{triple}",
                        f"unknown target triple{did_you_mean(triple, triples)}; rustfarm has "
                        f"images for {', '.join(t.triple for t in self.table)} "
                        "(`farm targets --known` lists every triple rustc knows)")
            pool = s.text("pool")
            if pool is not None and pool not in self.declared_pools:
                defined = ", ".join(sorted(self.declared_pools)) or "none"
                s.error(s.key_line("pool"), f"targets.{triple}.pool",
                        f"no worker pool '{pool}' is defined under workers"
                        f"{did_you_mean(pool, pools)} (defined: {defined})")
            kind = pools[pool].kind if pool in pools else None
            images = self.images(s, triple, default_toolchain)
            if kind in CONTAINER_POOLS and not images and not s.has("image"):
                s.error(line, f"targets.{triple}.image",
                        f"pool '{pool}' runs containers, so the target needs an image")
            env = s.text_mapping("env")
            spec = self.table.targets.get(triple)
            if spec and spec.rustflags and "RUSTFLAGS" in env:
                # RUSTFLAGS replaces the target's own flags: keep them in front.
                env["RUSTFLAGS"] = " ".join((*spec.rustflags, env["RUSTFLAGS"]))
            targets[triple] = Target(triple=triple, pool=pool or "", images=images,
                                     linker=s.text("linker", ""),
                                     runner=s.text("runner", self.default_runner(triple, kind)),
                                     env=env)
        if not top.has("targets"):
            top.error(1, "targets", "missing required key")
        return targets

    def default_runner(self, triple: str, pool_kind: str | None) -> str:
        """How tests run when farm.yaml does not say: the image's runner in a
        container, natively on a local worker of the same machine, else not at all."""
        spec = self.table.targets.get(triple)
        if pool_kind in CONTAINER_POOLS:
            return "image" if spec is None or spec.runs_here else ""
        return "native" if triple == HOST_TRIPLE else ""

    def images(self, s: Section, triple: str, default_toolchain: str) -> dict[str, str]:
        """``image``: one reference or a list; each serves the toolchain its tag
        names (``rustfarm/T:1.96-...``), or the farm's default toolchain."""
        if not s.has("image"):
            return {}
        raw = s.raw("image")
        references = [raw] if isinstance(raw, str) else raw
        if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
            s.error(s.key_line("image"), f"targets.{triple}.image",
                    f"must be an image reference or a list of them, not {type_name(raw)}")
            return {}
        images: dict[str, str] = {}
        for index, reference in enumerate(references):
            key = f"targets.{triple}.image" + (f"[{index}]" if isinstance(raw, list) else "")
            line = s.item_line("image", index) if isinstance(raw, list) else s.key_line("image")
            if not reference:
                continue
            if not re.match(r"^[a-z0-9][a-z0-9._/:@-]*$", reference, re.IGNORECASE) or \
                    " " in reference:
                s.error(line, key, f"'{reference}' is not an image reference")
                continue
            toolchain = image_toolchain(reference) or default_toolchain
            if toolchain not in self.table.toolchains:
                s.error(line, key, f"the tag names toolchain {toolchain}, which is not one of "
                                   f"{', '.join(self.table.toolchains)}")
                continue
            if toolchain in images:
                s.error(line, key, f"a second image for toolchain {toolchain} "
                                   f"(first: {images[toolchain]})")
                continue
            images[toolchain] = reference
        return images

"""Where cargo takes crates from, and the other registries projects name, as typed values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CargoRegistry:
    """A registry besides crates.io that projects name (``registry = "NAME"`` in their
    manifests): its index, whether it needs a token (kept in the farm's secret store,
    `farm registry-token NAME`), and whether uploads may take crates from it."""

    name: str
    index: str
    token: bool = False
    uploads: bool = False

    @property
    def source(self) -> str:
        """The index as Cargo.lock names it (``sparse+URL``, ``registry+URL``)."""
        return self.index if self.index.startswith(("sparse+", "registry+")) \
            else f"registry+{self.index}"

    @property
    def secret_name(self) -> str:
        return f"registry-{self.name}"


@dataclass(frozen=True)
class CrateSource:
    """Where cargo takes crates from: crates.io, a local directory or a mirror; and the
    other registries projects may name."""

    kind: str                 # "crates-io" | "directory" | "registry"
    location: str = ""
    registries: tuple[CargoRegistry, ...] = ()
    keep_days: int = 30       # the crate store lets go of what no build used so long

    @property
    def fetched_by_farm(self) -> bool:
        """Whether the farm fetches the builds' crates into its store (from crates.io or
        a mirror of it), rather than the builds taking them from a directory."""
        return self.kind != "directory"

    def cargo_config(self) -> tuple[str, ...]:
        """``--config`` values for cargo (stable since cargo 1.63)."""
        if self.kind == "directory":
            return ('source.crates-io.replace-with="farm-crates"',
                    f'source.farm-crates.directory="{self.location}"')
        if self.kind == "registry":
            return ('source.crates-io.replace-with="farm-crates"',
                    f'source.farm-crates.registry="{self.location}"')
        return ()

    def registry_config(self) -> tuple[str, ...]:
        """``--config`` values that name the other registries (their indexes)."""
        return tuple(f'registries.{r.name}.index="{r.index}"' for r in self.registries)

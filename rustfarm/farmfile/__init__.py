"""farm.yaml: the single description of a farm, loaded into typed, immutable values."""

from .errors import FarmFileError, Problem
from .checks import known_triples
from .loader import load, loads
from .model import Farm, Project, Target
from .crate_source import CrateSource
from .pool_kinds import DockerPool, Ec2Pool, LocalPool, Pool

__all__ = ["FarmFileError", "Problem", "load", "loads", "known_triples", "Farm", "Project",
           "Target", "Pool", "LocalPool", "DockerPool", "Ec2Pool", "CrateSource"]

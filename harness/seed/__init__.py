"""Deterministic scale-tier seeding: generators, binary COPY loader, and the seed manifest."""

from harness.seed.loader import TABLES, VerifyResult, seed, verify
from harness.seed.manifest import Manifest, read_manifest

__all__ = ["TABLES", "Manifest", "VerifyResult", "read_manifest", "seed", "verify"]

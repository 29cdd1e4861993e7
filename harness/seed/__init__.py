"""Deterministic scale-tier seeding: generators, binary COPY loader, the seed manifest, strategy switches."""

from harness.seed.indexes import switch_strategy
from harness.seed.loader import TABLES, VerifyResult, seed, verify
from harness.seed.manifest import Manifest, anchor_of, read_manifest

__all__ = ["TABLES", "Manifest", "VerifyResult", "anchor_of", "read_manifest", "seed", "switch_strategy", "verify"]

"""Index strategies: named SQL files of CREATE INDEX statements (``files``), applied to seeded data (``apply``)."""

from __future__ import annotations

from harness.strategies.apply import StrategyApplied, apply_strategy, existing_indexes, secondary_indexes
from harness.strategies.files import (
    IndexDef,
    Strategy,
    available_strategies,
    load_strategy,
    managed_index_names,
    strategies_dir,
)

__all__ = [
    "IndexDef",
    "Strategy",
    "StrategyApplied",
    "apply_strategy",
    "available_strategies",
    "existing_indexes",
    "load_strategy",
    "managed_index_names",
    "secondary_indexes",
    "strategies_dir",
]

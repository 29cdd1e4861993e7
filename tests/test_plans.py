"""Plan facts from EXPLAIN JSON saved from a real PostgreSQL 18 (see fixtures/plans/make_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.plans import (
    Misestimate,
    PartitionScan,
    PartitionTree,
    PlanFacts,
    SeqScan,
    Spill,
    index_serving,
    plan_diff,
    plan_facts,
    plan_shape,
)

FIXTURES = Path(__file__).parent / "fixtures" / "plans"
ALL_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def explain(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def facts(name: str, **kwargs: Any) -> PlanFacts:
    return plan_facts(explain(name), **kwargs)


def test_seq_scan() -> None:
    f = facts("seq_scan")
    assert f.seq_scans == ("events",)
    assert f.indexes_used == ()
    # No table sizes given: judged by the rows the scan read (20000 returned + 180000 filtered out).
    assert f.large_seq_scans == (SeqScan("events", 200_000),)
    assert f.misestimates == () and f.spills == ()
    assert (f.planning_ms, f.execution_ms) == (0.114, 11.16)
    assert (f.shared_hit_blocks, f.shared_read_blocks) == (2470, 0)
    assert f.tree == "Aggregate (rows 1 est 1, 11.1 ms)\n  Seq Scan on events (rows 20000 est 20133, 10.5 ms)"


def test_seq_scan_size_comes_from_table_rows_when_known() -> None:
    assert facts("seq_scan", table_rows={"events": 5_000}).large_seq_scans == ()
    assert facts("seq_scan", table_rows={"events": 1_000_000}).large_seq_scans == (SeqScan("events", 1_000_000),)
    assert facts("seq_scan", seq_scan_threshold=500_000).large_seq_scans == ()


def test_index_scan() -> None:
    f = facts("index_scan")
    assert f.indexes_used == ("events_pkey",)
    assert f.seq_scans == () and f.large_seq_scans == ()
    assert f.misestimates == () and f.spills == ()
    assert f.tree == "Index Scan using events_pkey on events (rows 101 est 101, 0.028 ms)"


def test_index_only_scan() -> None:
    f = facts("index_only_scan")
    assert f.indexes_used == ("events_user_occurred_idx",)
    assert f.root.kind == "Index Only Scan"
    assert (f.shared_hit_blocks, f.shared_read_blocks) == (11, 3)


def test_bitmap_heap_and_index_scan() -> None:
    f = facts("bitmap_scan")
    assert [n.node_type for n in f.root.walk()] == ["Bitmap Heap Scan", "Bitmap Index Scan"]
    assert f.indexes_used == ("events_user_occurred_idx",)
    assert f.seq_scans == ()
    assert f.tree.splitlines() == [
        "Bitmap Heap Scan on events (rows 3010 est 2817, 1.92 ms)",
        "  Bitmap Index Scan on events_user_occurred_idx (rows 3010 est 2817, 0.241 ms)",
    ]


def test_sort_spilled_to_disk() -> None:
    f = facts("sort_spill")
    assert f.spills == (Spill("Sort", "external merge, 10016 kB on disk", 5311),)
    assert f.settings["work_mem"] == "64kB"


def test_hash_join_in_batches_is_one_spill() -> None:
    f = facts("hash_join_batches", table_rows={"events": 200_000, "users": 20_000})
    # The Hash wrote 56 temp blocks, the Hash Join 520 more for the outer batches: one spill, on the Hash.
    assert f.spills == (Spill("Hash", "8 batches, 56 temp blocks written", 56),)
    assert f.seq_scans == ("events", "users")
    assert f.large_seq_scans == (SeqScan("events", 200_000), SeqScan("users", 20_000))
    assert f.tree.splitlines() == [
        "HashAggregate (rows 5 est 5, 59.1 ms)",
        "  Hash Join (rows 200000 est 200000, 43.3 ms)",
        "    Seq Scan on events e (rows 200000 est 200000, 12.7 ms)",
        "    Hash (rows 20000 est 20000, 2.72 ms)",
        "      Seq Scan on users u (rows 20000 est 20000, 1.16 ms)",
    ]


def test_correlated_predicates_misestimate() -> None:
    f = facts("misestimate")
    assert f.misestimates == (Misestimate("Seq Scan on events", 18.0, 2000.0, 2000 / 18, "under"),)
    assert str(f.misestimates[0]) == "Seq Scan on events: estimated 18 rows, got 2000 (111x underestimate)"


def test_nested_loop_compares_rows_per_loop() -> None:
    f = facts("nested_loop")
    inner = f.root.children[1]
    assert (inner.loops, inner.actual_rows, inner.plan_rows) == (20, 10.0, 10.0)
    assert f.misestimates == ()  # 200 rows over 20 loops vs 10 per loop is a perfect estimate
    assert f.indexes_used == ("users_pkey", "events_user_occurred_idx")
    assert f.tree.splitlines()[2] == (
        "  Index Scan using events_user_occurred_idx on events e (rows 10 est 10 × 20 loops, 0.18 ms)"
    )


def test_rows_cut_short_by_a_limit_are_not_a_misestimate() -> None:
    f = facts("limit_index_scan")
    scan = f.root.children[0]
    assert (scan.actual_rows, scan.plan_rows) == (10.0, 200_000.0)
    assert f.misestimates == ()


def test_plain_explain_without_analyze() -> None:
    f = facts("plain_explain")
    assert not f.analyzed
    assert f.indexes_used == ("users_pkey", "events_user_occurred_idx")
    assert (f.planning_ms, f.execution_ms) == (None, None)
    assert f.misestimates == () and f.spills == () and f.large_seq_scans == ()
    assert f.tree.splitlines()[0] == "Nested Loop (est 200 rows, cost 251.09)"


def test_settings_are_the_non_default_ones_explain_reported() -> None:
    assert facts("index_scan").settings == {
        "work_mem": "16MB",
        "effective_cache_size": "1GB",
        "jit": "off",
        "max_parallel_workers_per_gather": "0",
        "random_page_cost": "1.1",
    }


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_round_trip_through_json(name: str) -> None:
    f = facts(name)
    data = json.loads(json.dumps(f.as_dict()))
    assert data["tree"] == f.tree
    assert PlanFacts.from_dict(data) == f


def test_accepts_the_top_object_or_json_text_and_rejects_other_input() -> None:
    raw = explain("index_scan")
    assert plan_facts(raw[0]) == plan_facts(json.dumps(raw)) == plan_facts(raw)
    with pytest.raises(ValueError, match="EXPLAIN"):
        plan_facts([{"QUERY PLAN": "Seq Scan on t"}])


# -- synthetic nodes for rules the fixtures do not reach -------------------------------------------


def node(node_type: str, plan: float, actual: float, loops: int = 1, **extra: Any) -> dict[str, Any]:
    return {"Node Type": node_type, "Plan Rows": plan, "Actual Rows": actual, "Actual Loops": loops, **extra}


def test_misestimate_ignores_tiny_counts_and_never_executed_nodes() -> None:
    plan = node(
        "Append",
        100,
        100,
        Plans=[
            node("Seq Scan", 1, 9, **{"Relation Name": "a"}),  # 9x on single digits: noise
            node("Seq Scan", 1, 40, **{"Relation Name": "b"}),  # 40x: flagged
            node("Seq Scan", 500, 0, loops=0, **{"Relation Name": "c"}),  # never executed
            node("Seq Scan", 500, 2, **{"Relation Name": "d"}),  # 250x overestimate: flagged
        ],
    )
    found = plan_facts([{"Plan": plan}]).misestimates
    assert [(m.node, m.direction, m.factor) for m in found] == [
        ("Seq Scan on b", "under", 40.0),
        ("Seq Scan on d", "over", 250.0),
    ]


def test_inner_side_of_a_semi_join_may_stop_early_but_underestimates_still_count() -> None:
    plan = node(
        "Hash Join",
        1000,
        1000,
        **{"Join Type": "Semi"},
        Plans=[
            node("Seq Scan", 10, 1000, **{"Relation Name": "outer_t", "Parent Relationship": "Outer"}),
            node("Seq Scan", 5000, 3, **{"Relation Name": "inner_t", "Parent Relationship": "Inner"}),
        ],
    )
    f = plan_facts([{"Plan": plan}])
    assert [m.node for m in f.misestimates] == ["Seq Scan on outer_t"]
    assert f.root.kind == "Hash Semi Join"


def test_any_node_writing_temp_blocks_itself_is_a_spill() -> None:
    plan = node(
        "Materialize",
        10,
        10,
        **{"Temp Written Blocks": 70},
        Plans=[node("Seq Scan", 10, 10, **{"Relation Name": "t", "Temp Written Blocks": 0})],
    )
    assert plan_facts([{"Plan": plan}]).spills == (Spill("Materialize", "70 temp blocks written", 70),)


def test_node_names_follow_explain_text() -> None:
    plan = node(
        "Aggregate",
        1,
        1,
        Strategy="Sorted",
        Plans=[
            node(
                "Nested Loop",
                5,
                5,
                **{"Join Type": "Left"},
                Plans=[
                    node(
                        "Index Scan",
                        5,
                        5,
                        **{
                            "Index Name": "t_pkey",
                            "Relation Name": "t",
                            "Alias": "t",
                            "Scan Direction": "Backward",
                        },
                    ),
                    node("Seq Scan", 5, 5, **{"Relation Name": "u", "Parallel Aware": True}),
                ],
            )
        ],
    )
    assert plan_shape(plan_facts([{"Plan": plan}])) == [
        "GroupAggregate",
        "Nested Loop Left Join",
        "Index Scan Backward using t_pkey on t",
        "Parallel Seq Scan on u",
    ]


# -- shapes and diffs ------------------------------------------------------------------------------


def test_plan_shape_lists_nodes_without_numbers_or_aliases() -> None:
    assert plan_shape(facts("nested_loop")) == [
        "Nested Loop",
        "Index Only Scan using users_pkey on users",
        "Index Scan using events_user_occurred_idx on events",
    ]


def test_same_plan_has_no_diff() -> None:
    assert plan_diff(facts("nested_loop"), facts("nested_loop")) == []
    # Executed and planned-only versions of the same query have the same shape.
    assert plan_diff(facts("nested_loop"), facts("plain_explain")) == []


def test_index_scan_replaced_by_seq_scan() -> None:
    assert plan_diff(facts("index_scan"), facts("misestimate")) == [
        "Index Scan using events_pkey on events → Seq Scan on events",
        "index no longer used: events_pkey",
    ]
    assert plan_diff(facts("misestimate"), facts("index_scan")) == [
        "Seq Scan on events → Index Scan using events_pkey on events",
        "new index used: events_pkey",
    ]


def test_join_strategy_change_pairs_scans_by_relation() -> None:
    assert plan_diff(facts("nested_loop"), facts("hash_join_batches")) == [
        "Nested Loop → Hash Join",
        "Index Only Scan using users_pkey on users → Seq Scan on users",
        "Index Scan using events_user_occurred_idx on events → Seq Scan on events",
        "new in plan: HashAggregate",
        "new in plan: Hash",
        "index no longer used: users_pkey",
        "index no longer used: events_user_occurred_idx",
    ]


def test_swapped_join_sides_show_as_moved() -> None:
    def join(first: str, second: str) -> PlanFacts:
        scans = [node("Seq Scan", 5, 5, **{"Relation Name": r}) for r in (first, second)]
        return plan_facts([{"Plan": node("Hash Join", 5, 5, Plans=scans)}])

    assert plan_diff(join("a", "b"), join("b", "a")) == ["moved in plan: Seq Scan on b"]


def _scan(node_type: str, relation: str, index: str | None = None, rows: int = 50_000, loops: int = 1) -> dict:
    node = {"Node Type": node_type, "Relation Name": relation, "Plan Rows": rows, "Actual Rows": rows}
    return {**node, "Actual Loops": loops, **({"Index Name": index} if index else {})}


PARTITIONS = PartitionTree(
    {"orders_2025": "orders", "orders_2026": "orders", "o26_customer_idx": "orders_customer_idx"}, {"orders": 3}
)


def test_partitions_name_their_parent_and_pruning_is_counted() -> None:
    plan = {
        "Plan": {
            "Node Type": "Append",
            "Plan Rows": 50_001,
            "Actual Rows": 50_001,
            "Actual Loops": 1,
            "Plans": [
                _scan("Seq Scan", "orders_2026"),
                _scan("Index Scan", "orders_2025", "orders_2025_pkey", rows=1),
                _scan("Seq Scan", "orders_2027", loops=0),  # runtime-pruned: never executed
            ],
        }
    }
    tree = PartitionTree({**PARTITIONS.parents, "orders_2027": "orders"}, {"orders": 3})
    facts = plan_facts(plan, partitions=tree)
    assert facts.large_seq_scans == (SeqScan("orders_2026", 50_000, "orders"),)
    assert str(facts.large_seq_scans[0]) == "Seq Scan on orders_2026 (partition of orders) (50000 rows)"
    assert facts.partitions == (PartitionScan("orders", ("orders_2026", "orders_2025"), 3),)
    assert str(facts.partitions[0]) == "orders: 2 of 3 partitions scanned"
    assert PlanFacts.from_dict(json.loads(json.dumps(facts.as_dict()))) == facts


def test_an_expected_parent_index_is_served_by_a_partition_index() -> None:
    plan = {"Plan": _scan("Index Scan", "orders_2026", "o26_customer_idx", rows=20)}
    facts = plan_facts(plan, partitions=PARTITIONS)
    assert index_serving(facts, "orders_customer_idx") == "o26_customer_idx"
    assert index_serving(facts, "sales.orders_customer_idx") == "o26_customer_idx"
    assert index_serving(facts, "o26_customer_idx") == "o26_customer_idx"
    assert index_serving(facts, "orders_other_idx") is None
    assert index_serving(plan_facts(plan), "orders_customer_idx") is None  # without the tree: no match

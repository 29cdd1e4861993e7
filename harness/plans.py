"""EXPLAIN JSON → plan facts: indexes used, seq scans, row misestimates, spills, timings and buffers.

Input is the output of ``EXPLAIN (ANALYZE, BUFFERS, SETTINGS, FORMAT JSON)`` as psycopg returns it (already
decoded: a one-element list holding a dict). Plain ``EXPLAIN`` (no ANALYZE, e.g. a HypoPG what-if) is
accepted too: the facts that need execution (actual rows, spills, execution time) are then empty.
This module only reads plans; it never talks to a database.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SEQ_SCAN_THRESHOLD = 10_000  # rows: a seq scan on a smaller table is normal, not a smell
MISESTIMATE_FACTOR = 10.0
MISESTIMATE_MIN_ROWS = 10.0  # when estimate and actual are both below this, a ratio means nothing

INDEX_NODE_TYPES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
_AGGREGATE_KIND = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate", "Mixed": "MixedAggregate"}


@dataclass(frozen=True)
class PlanNode:
    """One plan node, with the numbers EXPLAIN reports for it.

    As in EXPLAIN, ``actual_rows``, ``plan_rows`` and ``actual_total_time`` are per loop, while buffer and
    temp block counts are totals over all loops *including the node's children*. Actual values are None
    when the plan was not executed (plain EXPLAIN).
    """

    node_type: str
    kind: str  # the node as EXPLAIN's text format names it: "Hash Left Join", "HashAggregate", ...
    relation: str | None
    index_name: str | None
    alias: str | None
    plan_rows: float
    total_cost: float
    actual_rows: float | None
    loops: int | None
    actual_total_time: float | None
    shared_hit_blocks: int = 0
    shared_read_blocks: int = 0
    temp_read_blocks: int = 0
    temp_written_blocks: int = 0
    rows_removed_by_filter: float = 0.0
    join_type: str | None = None
    parent_relationship: str | None = None
    sort_method: str | None = None
    sort_space_type: str | None = None
    sort_space_used_kb: int | None = None
    hash_batches: int | None = None
    children: tuple[PlanNode, ...] = ()

    def describe(self, alias: bool = True) -> str:
        """The node as EXPLAIN's text format names it: "Index Scan using bl_user_idx on behavior_logs b"."""
        text = self.kind
        if self.index_name and self.node_type == "Bitmap Index Scan":
            text += f" on {self.index_name}"
        elif self.index_name:
            text += f" using {self.index_name}"
        target = self.relation or self.alias
        if target:
            text += f" on {target}"
            if alias and self.relation and self.alias and self.alias != self.relation:
                text += f" {self.alias}"
        return text

    @property
    def executed(self) -> bool:
        return bool(self.loops)

    @property
    def own_temp_written_blocks(self) -> int:
        """Temp blocks this node wrote itself (EXPLAIN's counts include the children's)."""
        return max(0, self.temp_written_blocks - sum(c.temp_written_blocks for c in self.children))

    def walk(self) -> Iterator[PlanNode]:
        """This node and all below it, in plan order (depth first, as EXPLAIN prints them)."""
        yield self
        for child in self.children:
            yield from child.walk()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanNode:
        children = tuple(cls.from_dict(c) for c in data.get("children", ()))
        return cls(**{**data, "children": children})


@dataclass(frozen=True)
class PartitionTree:
    """Which tables and indexes are partitions of which, by the bare names EXPLAIN prints.

    Read from the server's catalog (``pg_inherits``, ``pg_partition_tree``) by harness.schema; empty for a
    database without partitioned tables.
    """

    parents: Mapping[str, str] = field(default_factory=dict)  # partition (table or index) → its parent
    leaf_counts: Mapping[str, int] = field(default_factory=dict)  # partitioned table → leaf partitions

    def ancestors(self, name: str) -> list[str]:
        """Parent, grandparent, … of a partition (table or index); empty for anything else."""
        found: list[str] = []
        while name in self.parents and name not in found:
            name = self.parents[name]
            found.append(name)
        return found


@dataclass(frozen=True)
class SeqScan:
    """A sequential scan on a table big enough for it to matter."""

    relation: str
    rows: int  # the table's row count (from table_rows), else the rows the scan read
    parent: str | None = None  # the partitioned table, when ``relation`` is one of its partitions

    def __str__(self) -> str:
        where = f"{self.relation} (partition of {self.parent})" if self.parent else self.relation
        return f"Seq Scan on {where} ({self.rows} rows)"


@dataclass(frozen=True)
class PartitionScan:
    """How many of a partitioned table's partitions the plan read: pruning at a glance."""

    table: str
    scanned: tuple[str, ...]
    total: int

    def __str__(self) -> str:
        return f"{self.table}: {len(self.scanned)} of {self.total} partitions scanned"


@dataclass(frozen=True)
class Misestimate:
    """A node whose actual rows per loop differ from the planner's estimate by ``factor`` or more."""

    node: str
    plan_rows: float
    actual_rows: float
    factor: float
    direction: Literal["under", "over"]  # "under": the planner expected fewer rows than came

    def __str__(self) -> str:
        return (
            f"{self.node}: estimated {_fmt_rows(self.plan_rows)} rows, got {_fmt_rows(self.actual_rows)} "
            f"({self.factor:.0f}x {self.direction}estimate)"
        )


@dataclass(frozen=True)
class Spill:
    """A node that went to disk because its data did not fit in work_mem."""

    node: str
    reason: str
    temp_written_blocks: int  # written by this node itself

    def __str__(self) -> str:
        return f"{self.node}: {self.reason}"


@dataclass(frozen=True)
class PlanFacts:
    """What a plan says about a query, in the terms verdicts and reports need."""

    root: PlanNode
    indexes_used: tuple[str, ...]
    seq_scans: tuple[str, ...]
    large_seq_scans: tuple[SeqScan, ...]
    misestimates: tuple[Misestimate, ...]
    spills: tuple[Spill, ...]
    planning_ms: float | None
    execution_ms: float | None
    shared_hit_blocks: int
    shared_read_blocks: int
    settings: Mapping[str, str] = field(default_factory=dict)
    partitions: tuple[PartitionScan, ...] = ()
    index_parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # used partition index → ancestors

    @property
    def analyzed(self) -> bool:
        return self.root.actual_rows is not None

    @property
    def tree(self) -> str:
        """One line per node, indented by depth: "Seq Scan on users (rows 20 est 20, 0.01 ms)"."""
        return "\n".join(_tree_lines(self.root, 0))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; ``tree`` is included for readers of run.json and ignored by ``from_dict``."""
        data = asdict(self)
        data["settings"] = dict(self.settings)
        data["index_parents"] = {k: list(v) for k, v in self.index_parents.items()}
        data["tree"] = self.tree
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanFacts:
        return cls(
            root=PlanNode.from_dict(data["root"]),
            indexes_used=tuple(data["indexes_used"]),
            seq_scans=tuple(data["seq_scans"]),
            large_seq_scans=tuple(SeqScan(**s) for s in data["large_seq_scans"]),
            misestimates=tuple(Misestimate(**m) for m in data["misestimates"]),
            spills=tuple(Spill(**s) for s in data["spills"]),
            planning_ms=data["planning_ms"],
            execution_ms=data["execution_ms"],
            shared_hit_blocks=data["shared_hit_blocks"],
            shared_read_blocks=data["shared_read_blocks"],
            settings=dict(data.get("settings", {})),
            partitions=tuple(
                PartitionScan(p["table"], tuple(p["scanned"]), p["total"]) for p in data.get("partitions", ())
            ),
            index_parents={k: tuple(v) for k, v in data.get("index_parents", {}).items()},
        )


def plan_facts(
    explain_json: Any,
    table_rows: Mapping[str, int] | None = None,
    seq_scan_threshold: int = SEQ_SCAN_THRESHOLD,
    partitions: PartitionTree | None = None,
) -> PlanFacts:
    """Derive plan facts from EXPLAIN's JSON (a decoded list/dict, or the JSON text).

    ``table_rows`` (table name → row count, e.g. from the seed manifest) decides which seq scans are
    large; a table it does not list is judged by the rows its scan actually read. ``partitions`` (the
    server's partition tree) names each scanned partition's parent and counts partitions scanned of total.
    """
    top = _top_level(explain_json)
    root = _parse_node(top["Plan"])
    nodes = list(root.walk())
    tree = partitions or PartitionTree()
    indexes_used = _unique(n.index_name for n in nodes if n.node_type in INDEX_NODE_TYPES and n.index_name)
    return PlanFacts(
        root=root,
        indexes_used=indexes_used,
        seq_scans=_unique(n.relation for n in nodes if n.node_type == "Seq Scan"),
        large_seq_scans=_large_seq_scans(nodes, table_rows or {}, seq_scan_threshold, tree),
        misestimates=tuple(_misestimates(root, early_stop=False)),
        spills=tuple(_spills(nodes)),
        planning_ms=top.get("Planning Time"),
        execution_ms=top.get("Execution Time"),
        shared_hit_blocks=root.shared_hit_blocks,
        shared_read_blocks=root.shared_read_blocks,
        settings={str(k): str(v) for k, v in top.get("Settings", {}).items()},
        partitions=_partition_scans(nodes, tree),
        index_parents={i: tuple(tree.ancestors(i)) for i in indexes_used if tree.ancestors(i)},
    )


def index_serving(plan: PlanFacts, expected: str) -> str | None:
    """The index in the plan that serves an expected one: itself, or a partition's index attached to it
    (an index on a partitioned table is used through its partitions' indexes). ``schema.`` is ignored."""
    wanted = expected.rsplit(".", 1)[-1].strip('"')
    if wanted in plan.indexes_used:
        return wanted
    return next((used for used in plan.indexes_used if wanted in plan.index_parents.get(used, ())), None)


def plan_shape(facts: PlanFacts) -> list[str]:
    """The plan as node kinds with their relation and index, in plan order (no numbers, no aliases)."""
    return _shape(list(facts.root.walk()))


@dataclass(frozen=True)
class PlanChange:
    """One way a candidate's plan differs from the baseline's, as a value (reports render it, gates read it).

    ``kind``: "switched" (a node replaced by another playing its part: ``before`` → ``after``), "moved" (the
    same node elsewhere in the tree), "removed" / "added" (a node only in one plan), "index dropped" /
    "index added" (an index that stopped or started being used; ``before`` / ``after`` hold its name).
    """

    kind: Literal["switched", "moved", "removed", "added", "index dropped", "index added"]
    before: str | None = None
    after: str | None = None

    def __str__(self) -> str:
        return {
            "switched": f"{self.before} → {self.after}",
            "moved": f"moved in plan: {self.after}",
            "removed": f"no longer in plan: {self.before}",
            "added": f"new in plan: {self.after}",
            "index dropped": f"index no longer used: {self.before}",
            "index added": f"new index used: {self.after}",
        }[self.kind]


def plan_changes(base: PlanFacts, cand: PlanFacts) -> list[PlanChange]:
    """How the candidate's plan differs from the baseline's; empty when the same shape.

    Nodes only in one plan are paired where a reader would pair them — scans of the same relation
    ("Index Scan using bl_user_occurred_idx on behavior_logs → Seq Scan on behavior_logs"), then join for
    join and aggregate for aggregate — and the rest listed as gone or new; then indexes that stopped or
    started being used.
    """
    old, new = list(base.root.walk()), list(cand.root.walk())
    matcher = difflib.SequenceMatcher(a=_shape(old), b=_shape(new), autojunk=False)
    removed: list[PlanNode] = []
    added: list[PlanNode] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            removed += old[i1:i2]
            added += new[j1:j2]
    changes: list[PlanChange] = []
    for gone in removed:
        twin = _counterpart(gone, added)
        if twin is None:
            changes.append(PlanChange("removed", before=gone.describe(alias=False)))
            continue
        added.remove(twin)
        before, after = gone.describe(alias=False), twin.describe(alias=False)
        changes.append(PlanChange("moved", after=after) if before == after else PlanChange("switched", before, after))
    changes += [PlanChange("added", after=node.describe(alias=False)) for node in added]
    changes += [PlanChange("index dropped", before=i) for i in base.indexes_used if i not in cand.indexes_used]
    changes += [PlanChange("index added", after=i) for i in cand.indexes_used if i not in base.indexes_used]
    return changes


def plan_diff(base: PlanFacts, cand: PlanFacts) -> list[str]:
    """:func:`plan_changes` as the lines a human reads."""
    return [str(change) for change in plan_changes(base, cand)]


def shape_fingerprint(facts: PlanFacts) -> str:
    """A short, stable id of :func:`plan_shape`: node kinds, relations and indexes in plan order, no numbers.

    Two draws with the same fingerprint got the same plan; costs, row counts and aliases do not count.
    """
    return hashlib.sha256("\n".join(plan_shape(facts)).encode()).hexdigest()[:12]


def _shape(nodes: list[PlanNode]) -> list[str]:
    return [node.describe(alias=False) for node in nodes]


def _counterpart(node: PlanNode, candidates: list[PlanNode]) -> PlanNode | None:
    """The node in the other plan that plays this one's part: same relation, else same role."""
    if node.relation:
        return next((c for c in candidates if c.relation == node.relation), None)
    role = _role(node)
    return next((c for c in candidates if role and not c.relation and _role(c) == role), None)


def _role(node: PlanNode) -> str | None:
    if node.node_type == "Nested Loop" or node.node_type.endswith(" Join"):
        return "join"
    if node.node_type == "Aggregate":
        return "aggregate"
    return None


# -- parsing ---------------------------------------------------------------------------------------


def _top_level(explain_json: Any) -> Mapping[str, Any]:
    data = json.loads(explain_json) if isinstance(explain_json, str | bytes) else explain_json
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, Mapping) or not isinstance(data.get("Plan"), Mapping):
        raise ValueError("not EXPLAIN (FORMAT JSON) output: expected [{'Plan': {...}, ...}]")
    return data


def _parse_node(raw: Mapping[str, Any]) -> PlanNode:
    loops = raw.get("Actual Loops")
    return PlanNode(
        node_type=raw["Node Type"],
        kind=_kind(raw),
        relation=raw.get("Relation Name"),
        index_name=raw.get("Index Name"),
        alias=raw.get("Alias"),
        plan_rows=float(raw.get("Plan Rows", 0)),
        total_cost=float(raw.get("Total Cost", 0.0)),
        actual_rows=_float_or_none(raw.get("Actual Rows")),
        loops=int(loops) if loops is not None else None,
        actual_total_time=_float_or_none(raw.get("Actual Total Time")),
        shared_hit_blocks=int(raw.get("Shared Hit Blocks", 0)),
        shared_read_blocks=int(raw.get("Shared Read Blocks", 0)),
        temp_read_blocks=int(raw.get("Temp Read Blocks", 0)),
        temp_written_blocks=int(raw.get("Temp Written Blocks", 0)),
        rows_removed_by_filter=float(raw.get("Rows Removed by Filter", 0)),
        join_type=raw.get("Join Type"),
        parent_relationship=raw.get("Parent Relationship"),
        sort_method=raw.get("Sort Method"),
        sort_space_type=raw.get("Sort Space Type"),
        sort_space_used_kb=raw.get("Sort Space Used"),
        hash_batches=raw.get("Hash Batches"),
        children=tuple(_parse_node(child) for child in raw.get("Plans", ())),
    )


def _kind(raw: Mapping[str, Any]) -> str:
    """The node's name as text EXPLAIN prints it (join type, aggregate strategy, direction, parallel)."""
    node_type: str = raw["Node Type"]
    kind = node_type
    if node_type == "Aggregate":
        kind = _AGGREGATE_KIND.get(raw.get("Strategy", ""), "Aggregate")
    join_type = raw.get("Join Type")
    if join_type and join_type != "Inner":  # "Hash Join" + "Left" -> "Hash Left Join"
        kind = f"{node_type.removesuffix(' Join')} {join_type} Join"
    if raw.get("Scan Direction") == "Backward":
        kind += " Backward"
    if raw.get("Parallel Aware"):
        kind = "Parallel " + kind
    return kind


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _unique(items: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


# -- facts -----------------------------------------------------------------------------------------


def _large_seq_scans(
    nodes: list[PlanNode], table_rows: Mapping[str, int], threshold: int, tree: PartitionTree
) -> tuple[SeqScan, ...]:
    found: dict[str, SeqScan] = {}
    for node in nodes:
        if node.node_type != "Seq Scan" or not node.relation or node.relation in found:
            continue
        rows = table_rows.get(node.relation)
        if rows is None and node.actual_rows is not None and node.loops:
            rows = round((node.actual_rows + node.rows_removed_by_filter) * node.loops)
        if rows is not None and rows > threshold:
            parents = tree.ancestors(node.relation)
            found[node.relation] = SeqScan(node.relation, rows, parents[-1] if parents else None)
    return tuple(found.values())


def _partition_scans(nodes: list[PlanNode], tree: PartitionTree) -> tuple[PartitionScan, ...]:
    """Per partitioned table, the partitions the plan read (executed, when the plan was analyzed)."""
    scanned: dict[str, list[str]] = {}
    for node in nodes:
        ancestors = tree.ancestors(node.relation) if node.relation else []
        if ancestors and (node.actual_rows is None or node.executed):
            partitions = scanned.setdefault(ancestors[-1], [])
            if node.relation not in partitions:
                partitions.append(node.relation)  # type: ignore[arg-type]
    return tuple(
        PartitionScan(table, tuple(parts), tree.leaf_counts.get(table, len(parts))) for table, parts in scanned.items()
    )


def _misestimates(node: PlanNode, early_stop: bool) -> Iterator[Misestimate]:
    """Nodes whose actual rows per loop and estimated rows per loop differ by MISESTIMATE_FACTOR or more.

    Both numbers are per loop in EXPLAIN, so loops cancel out. A node whose parent may stop reading it
    early (under a Limit, the inner side of a semi/anti join, either side of a Merge Join) legitimately
    returns fewer rows than estimated, so only its underestimates count.
    """
    if node.executed and node.actual_rows is not None:
        actual, planned = node.actual_rows, node.plan_rows
        if max(actual, planned) >= MISESTIMATE_MIN_ROWS:
            factor = max(actual, 1.0) / max(planned, 1.0)
            if factor >= MISESTIMATE_FACTOR:
                yield Misestimate(node.describe(), planned, actual, factor, "under")
            elif 1.0 / factor >= MISESTIMATE_FACTOR and not early_stop:
                yield Misestimate(node.describe(), planned, actual, 1.0 / factor, "over")
    for child in node.children:
        stops = node.node_type in ("Limit", "Merge Join") or (
            node.join_type in ("Semi", "Anti") and child.parent_relationship == "Inner"
        )
        yield from _misestimates(child, early_stop or stops)


def _spills(nodes: list[PlanNode]) -> Iterator[Spill]:
    """Sorts on disk, hashes in several batches, and any other node that wrote temp blocks itself.

    A Hash Join whose Hash child spilled writes its outer batches too; that is the same spill, reported
    once on the Hash.
    """
    for node in nodes:
        own = node.own_temp_written_blocks
        if node.sort_space_type == "Disk":
            reason = f"{node.sort_method}, {node.sort_space_used_kb} kB on disk"
        elif node.hash_batches is not None and node.hash_batches > 1:
            reason = f"{node.hash_batches} batches, {own} temp blocks written"
        elif own > 0 and not any(_hash_spilled(c) for c in node.children):
            reason = f"{own} temp blocks written"
        else:
            continue
        yield Spill(node.describe(), reason, own)


def _hash_spilled(node: PlanNode) -> bool:
    return node.node_type == "Hash" and (node.hash_batches or 0) > 1


# -- text ------------------------------------------------------------------------------------------


def _tree_lines(node: PlanNode, depth: int) -> Iterator[str]:
    yield "  " * depth + f"{node.describe()} ({_node_numbers(node)})"
    for child in node.children:
        yield from _tree_lines(child, depth + 1)


def _node_numbers(node: PlanNode) -> str:
    if node.actual_rows is None:
        return f"est {_fmt_rows(node.plan_rows)} rows, cost {node.total_cost:.2f}"
    if not node.loops:
        return f"never executed, est {_fmt_rows(node.plan_rows)} rows"
    rows = f"rows {_fmt_rows(node.actual_rows)} est {_fmt_rows(node.plan_rows)}"
    total_ms = (node.actual_total_time or 0.0) * node.loops
    if node.loops > 1:
        return f"{rows} × {node.loops} loops, {_fmt_ms(total_ms)} ms"
    return f"{rows}, {_fmt_ms(total_ms)} ms"


def _fmt_rows(rows: float) -> str:
    return str(int(rows)) if float(rows).is_integer() else f"{rows:.2f}"


def _fmt_ms(ms: float) -> str:
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"

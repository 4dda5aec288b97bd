"""The lineage graph laid out left to right for an inline SVG, in pure Python.

What a run read is to its left and what it made to its right: each run and each
version (or object generation) goes in the column after the furthest of what leads to
it (the longest path from a source; a cycle, which runs reading each other's outputs
may make, is broken where it is met), and within a column items follow the mean row
of what leads to them, so that edges cross less. The template
(``lineage_graph.html``) draws what :func:`layout` answers; every text goes through
its autoescaping.
"""

from __future__ import annotations

from typing import Any

ITEM_WIDTH = 170
ITEM_HEIGHT = 42
COLUMN_GAP = 44
ROW_GAP = 18
MARGIN = 10
LABEL_CHARS = 24
"""Characters of a label drawn in a box (the whole label is the box's tooltip)."""


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def _items(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every run (``run:ID``) and node (``node:NODE``) of a lineage answer, with the
    lines it shows and its whole label."""
    items: dict[str, dict[str, Any]] = {}
    for r in data["runs"]:
        items["run:" + r["id"]] = {"kind": "run", "run": r, "title": f"run {r['name']} "
                                   f"[{r['status']}] {r['id']}",
                                   "lines": [_short(r["name"]), r["status"]]}
    for n in data["nodes"]:
        what = f"{n['namespace']}/{n['name']}"
        if n["version"] is not None:
            second = f"v{n['version']}" + (" · removed" if n["state"] == "removed" else "")
            title = f"{what}:v{n['version']} ({n['state']})"
        else:
            second = f"memory · {n['state']}"
            title = f"{what} (memory {n['generation']}, {n['state']})"
        items["node:" + n["node"]] = {"kind": "version" if n["version"] is not None
                                      else "object", "node": n, "title": title,
                                      "lines": [_short(what), second],
                                      "root": n["node"] == data["root"]}
    return items


def _columns(keys: list[str], before: dict[str, list[str]],
             after: dict[str, list[str]]) -> dict[str, int]:
    """Each item's column: one past the furthest item leading to it."""
    waiting = {k: len(before[k]) for k in keys}
    ready = [k for k in reversed(keys) if not waiting[k]]
    column: dict[str, int] = {}
    while len(column) < len(keys):
        if not ready:  # a cycle: start from what waits on the fewest
            ready = [min((k for k in keys if k not in column), key=lambda k: waiting[k])]
        key = ready.pop()
        if key in column:
            continue
        column[key] = max((column[b] + 1 for b in before[key] if b in column), default=0)
        for nxt in after[key]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0 and nxt not in column:
                ready.append(nxt)
    return column


def layout(data: dict[str, Any]) -> dict[str, Any]:
    """Positions for a lineage answer (:func:`catalogstore.web.api.lineage`): ``items``
    (each with ``x``, ``y``, ``kind`` — run, version or object —, ``lines``, ``title``
    and its run or node), ``edges`` (``x1``.. ``y2``, from what is read to the run and
    from the run to what it made), ``width`` and ``height``."""
    items = _items(data)
    keys = list(items)
    before: dict[str, list[str]] = {k: [] for k in keys}
    after: dict[str, list[str]] = {k: [] for k in keys}
    pairs: dict[tuple[str, str], None] = {}
    for e in data["edges"]:
        run, node = "run:" + e["run"], "node:" + e["node"]
        pair = (node, run) if e["direction"] == "input" else (run, node)
        if pair[0] in items and pair[1] in items and pair not in pairs:
            pairs[pair] = None
            after[pair[0]].append(pair[1])
            before[pair[1]].append(pair[0])
    column = _columns(keys, before, after)
    rows: dict[str, float] = {}
    stacks: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for key in keys:
        stacks[column[key]].append(key)
    for stack in stacks:
        placed = {k: sum(rows[b] for b in before[k] if b in rows) /
                  max(1, sum(1 for b in before[k] if b in rows)) for k in stack}
        stack.sort(key=lambda k: placed[k])
        for row, key in enumerate(stack):
            rows[key] = row
    for key, item in items.items():
        item["x"] = MARGIN + column[key] * (ITEM_WIDTH + COLUMN_GAP)
        item["y"] = MARGIN + int(rows[key]) * (ITEM_HEIGHT + ROW_GAP)
    edges = [{"x1": items[a]["x"] + ITEM_WIDTH, "y1": items[a]["y"] + ITEM_HEIGHT // 2,
              "x2": items[b]["x"], "y2": items[b]["y"] + ITEM_HEIGHT // 2}
             for a, b in pairs]
    tallest = max((len(s) for s in stacks), default=0)
    return {"items": list(items.values()), "edges": edges,
            "item_width": ITEM_WIDTH, "item_height": ITEM_HEIGHT,
            "width": 2 * MARGIN + len(stacks) * (ITEM_WIDTH + COLUMN_GAP) - COLUMN_GAP,
            "height": 2 * MARGIN + tallest * (ITEM_HEIGHT + ROW_GAP) - ROW_GAP}

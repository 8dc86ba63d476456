"""Read YAML or JSON into plain values while remembering the line of every key and item."""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class LineMap:
    """Line numbers (1-based) of every value, keyed by its path in the document."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def load_with_lines(text: str) -> tuple[Any, LineMap]:
    """Parse YAML (JSON is YAML too). Raises yaml.YAMLError."""
    lines = LineMap()
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return None, lines
    return _convert(node, (), lines), lines


def _convert(node: yaml.Node, path: Path_, lines: LineMap) -> Any:
    lines.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            # keys stay as written: YAML 1.1 would turn a key like `on` into True
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            lines.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), lines)
            lines.lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines) for i, item in enumerate(node.value)]
    loader = yaml.SafeLoader("")
    return loader.construct_object(node, deep=True)

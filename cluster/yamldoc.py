"""Read multi-document YAML keeping each node's position, so every error can name LINE:COL."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from cluster.errors import InputError

MAX_FILE_BYTES = 16 * 1024 * 1024  # a Clusterfile of 10,000 hosts is about 1 MB
MAX_DEPTH = 100  # levels of YAML nesting: a Clusterfile needs about 10, a CRD schema about 40
MAX_DOCUMENTS = 1000  # Cluster, Plugins, Configs, kubeadm documents: a few dozen in practice
MAX_EXPANDED_NODES = 2_000_000  # alias expansion budget: stops "billion laughs" bombs

try:  # libyaml is ten times faster on big Clusterfiles
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure Python fallback
    _Loader = yaml.SafeLoader


@dataclass
class YamlDoc:
    index: int  # 1-based document number in the file
    node: yaml.Node
    data: object


def read_text(path: str, what: str = "file") -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError([f"{path}: no such {what}"]) from None
    except IsADirectoryError:
        raise InputError([f"{path}: is a directory, expected a {what}"]) from None
    except OSError as e:
        raise InputError([f"{path}: cannot read: {e.strerror}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError([f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, refused"])
    if b"\0" in raw:
        raise InputError([f"{path}: binary data, expected YAML text"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError([f"{path}:{line}: not valid UTF-8 text"]) from None


def load_documents(path: str, text: str) -> list[YamlDoc]:
    """All non-empty documents of the file, with their nodes and plain data."""
    loader = _Loader(text)
    docs: list[YamlDoc] = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            index += 1
            if index > MAX_DOCUMENTS:
                raise InputError([f"{path}: more than {MAX_DOCUMENTS} YAML documents, refused"])
            if node is None:
                continue
            _check_nesting(path, node)
            _check_expansion(path, node)
            _check_duplicate_keys(path, node)
            docs.append(YamlDoc(index, node, loader.construct_document(node)))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = e.problem or e.context or "invalid YAML"
        if mark and _char_at(text, mark.line, mark.column) == "\t":
            problem += " (a tab; indent with spaces, not tabs)"
        raise InputError([f"{where}: invalid YAML: {problem}"]) from None
    except yaml.YAMLError as e:
        raise InputError([f"{path}: invalid YAML: {str(e).splitlines()[0]}"]) from None
    except RecursionError:  # PyYAML's composer recurses once per level of nesting
        raise InputError([f"{path}: YAML nested deeper than Python can read, refused"]) from None
    finally:
        loader.dispose()
    return docs


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    return lines[line][column] if line < len(lines) and column < len(lines[line]) else ""


def _check_nesting(path: str, root: yaml.Node) -> None:
    """Refuse a node that contains itself (a recursive alias: `&a [*a]`) and nesting deeper
    than MAX_DEPTH, before anything walks the document recursively. Iterative (a hostile
    depth never reaches Python's recursion limit) and each node once (an alias is not walked
    again: a YAML bomb costs its nodes, not their expansion)."""
    heights: dict[int, int] = {}  # node -> levels from it down, once known
    on_path: set[int] = set()  # the nodes entered and not finished: the current path
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finishing = stack.pop()
        children = _children(node)
        if finishing:
            on_path.discard(id(node))
            heights[id(node)] = 1 + max((heights[id(c)] for c in children), default=0)
            if heights[id(node)] > MAX_DEPTH:
                raise InputError([f"{_where(path, node)}: YAML nested more than {MAX_DEPTH} "
                                  "levels deep, refused"])  # fmt: skip
        elif id(node) in on_path:
            raise InputError(
                [f"{_where(path, node)}: a YAML alias refers to a node that contains it, refused"]
            )
        elif id(node) not in heights:
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _where(path: str, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _check_expansion(path: str, root: yaml.Node) -> None:
    """Refuse documents whose aliases expand to millions of nodes (YAML bombs)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias counts once instead of looping
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(v) for v in node.value)
        sizes[id(node)] = total
        return total

    if size(root) > MAX_EXPANDED_NODES:
        m = root.start_mark
        raise InputError(
            [
                f"{path}:{m.line + 1}:{m.column + 1}: YAML aliases expand to more than "
                f"{MAX_EXPANDED_NODES:,} nodes (a YAML bomb?), refused"
            ]
        )


def _check_duplicate_keys(path: str, root: yaml.Node) -> None:
    """A key given twice in one mapping: YAML loaders keep the last one silently; refuse it."""
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:  # an alias: checked where it was defined
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key, value in node.value:
                name = getattr(key, "value", None)
                if isinstance(key, yaml.ScalarNode) and name != "<<":
                    if name in first:
                        was, now = first[name].start_mark, key.start_mark
                        raise InputError(
                            [
                                f"{path}:{now.line + 1}:{now.column + 1}: duplicate key {name!r} "
                                f"(first given at line {was.line + 1}); give each key once"
                            ]
                        )
                    first[name] = key
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value


def node_at(root: yaml.Node, path: list) -> yaml.Node:
    """The deepest node along path (a list of keys and indexes) that exists."""
    node = root
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if getattr(key, "value", None) == str(part):
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node


def key_node_at(root: yaml.Node, path: list) -> yaml.Node:
    """The key node for the last element of path (to point at an unknown field's name)."""
    parent = node_at(root, path[:-1])
    if isinstance(parent, yaml.MappingNode):
        for key, _ in parent.value:
            if getattr(key, "value", None) == str(path[-1]):
                return key
    return node_at(root, path)


def format_path(path: list) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def where(file: str, node: yaml.Node) -> str:
    m = node.start_mark
    return f"{file}:{m.line + 1}:{m.column + 1}"

"""A griffe extension: this project's reST-flavoured docstrings as Markdown.

The docstrings are written the way h11's are: prose with ``double backticks``
(already valid Markdown) and Sphinx roles. mkdocstrings renders Markdown, so
before rendering this extension rewrites, in every docstring of a package:

- a role (``:class:`~sora_core.Call```, ``:meth:`send```, ``:data:`NEED_DATA```)
  into an autorefs cross-reference (``[`Call`][sora_core.Call]``) when the
  target is a documented public name, and into inline code otherwise (a
  private helper, ``ssl.SSLContext``);
- a reST literal block (a paragraph ending in ``::`` and an indented block)
  into a fenced Python block.

Names are resolved the way a reader would: the class, then the module, then
the package the docstring belongs to, then ``sora_core`` and
``sora_transports``. A path through a private module (``sora_core._call.Call``)
is turned into the public name it is exported as (``sora_core.Call``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

PUBLIC_PACKAGES = ("sora_core", "sora_transports")

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|attr|data|exc|mod|obj|const):`(?P<text>[^`]+)`"
)
_TITLED = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$")


def _get(collection: Any, path: str) -> Any:
    try:
        return collection[path]
    except Exception:  # KeyError, or an alias that cannot be resolved
        return None


def _is_public(path: str) -> bool:
    parts = path.split(".")
    return parts[0] in PUBLIC_PACKAGES and not any(
        p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts
    )


class RestDocstrings(griffe.Extension):
    """Rewrite roles and literal blocks in every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.path not in PUBLIC_PACKAGES:
            return
        collection = loader.modules_collection
        exported = self._exports(collection)
        for obj in self._walk(pkg):
            if obj.docstring is not None and obj.docstring.value:
                text = _literal_blocks(obj.docstring.value)
                text = _ROLE.sub(lambda m, o=obj: self._role(m, o, collection, exported), text)
                obj.docstring.value = text

    # -- walking -----------------------------------------------------------------

    def _walk(self, obj: griffe.Object) -> Any:
        yield obj
        for member in obj.members.values():
            if member.is_alias:
                continue
            if member.is_module and not member.path.startswith(obj.path + "."):
                continue
            yield from self._walk(member)

    def _exports(self, collection: Any) -> dict[str, str]:
        """canonical path -> public path, for the names the packages export."""
        out: dict[str, str] = {}
        for name in PUBLIC_PACKAGES:
            pkg = _get(collection, name)
            if pkg is None:
                continue
            for member_name, member in pkg.members.items():
                if member_name.startswith("_"):
                    continue
                target = member.target_path if member.is_alias else member.path
                out.setdefault(target, f"{name}.{member_name}")
        return out

    # -- roles -------------------------------------------------------------------

    def _role(
        self, m: re.Match[str], obj: griffe.Object, collection: Any, exported: dict[str, str]
    ) -> str:
        text = m.group("text").strip()
        titled = _TITLED.match(text)
        if titled:
            title, target = titled.group("title"), titled.group("target")
        else:
            target = text.lstrip("~")
            title = target.rsplit(".", 1)[-1] if text.startswith("~") else target
        target = target.removesuffix("()")
        path = self._resolve(target, obj, collection, exported)
        shown = f"`{title}`"
        return f"[{shown}][{path}]" if path else shown

    def _resolve(
        self, target: str, obj: griffe.Object, collection: Any, exported: dict[str, str]
    ) -> str | None:
        if target.split(".")[0] in PUBLIC_PACKAGES:
            found = _get(collection, target)
            if found is None:
                # The other package may not be loaded yet: trust a public path.
                return target if _is_public(target) else None
            return self._public(found, target, exported)
        scopes = []
        scope: Any = obj
        while scope is not None:
            if not scope.is_function and not scope.is_attribute:
                scopes.append(scope.path)
            scope = scope.parent
        scopes += list(PUBLIC_PACKAGES)
        for base in scopes:
            path = f"{base}.{target}"
            found = _get(collection, path)
            if found is not None:
                return self._public(found, path, exported)
        return None

    def _public(self, found: Any, path: str, exported: dict[str, str]) -> str | None:
        try:
            canonical = found.final_target.path if found.is_alias else found.path
        except Exception:
            canonical = path
        if _is_public(path):
            return path
        for candidate in (canonical, path):
            parts = candidate.split(".")
            for cut in range(len(parts), 0, -1):
                head = ".".join(parts[:cut])
                if head in exported:
                    public = ".".join([exported[head], *parts[cut:]])
                    return public if _is_public(public) else None
        return None


def _literal_blocks(text: str) -> str:
    """reST ``::`` literal blocks -> fenced Python blocks."""
    if "::" not in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if stripped.endswith("::") and i + 1 < len(lines) and not lines[i + 1].strip():
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block_indent = len(lines[j]) - len(lines[j].lstrip()) if j < len(lines) else 0
            if j < len(lines) and block_indent > indent:
                block: list[str] = []
                while j < len(lines) and (
                    not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) >= block_indent
                ):
                    block.append(lines[j][block_indent:])
                    j += 1
                while block and not block[-1].strip():
                    block.pop()
                lead = stripped[:-2].rstrip()
                if lead.strip():
                    out.append(lead + ":")
                out += ["", " " * indent + "```python"]
                out += [(" " * indent + b) if b else "" for b in block]
                out += [" " * indent + "```", ""]
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)

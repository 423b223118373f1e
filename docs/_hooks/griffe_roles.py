"""Griffe extension: render the Sphinx roles of our docstrings (``:class:`~a.B```) as code (`B`).

The docstrings use Google-style sections with a few reST roles; mkdocstrings would show the roles
literally.  Used by ``mkdocs.yml`` (mkdocstrings' python handler, ``extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|exc|data|obj|const):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class ReSTRoles(griffe.Extension):
    """Rewrite reST cross-reference roles to inline code in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_code, obj.docstring.value)

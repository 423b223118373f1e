"""The wheel a user installs builds without the build backend's deprecation warnings.

setuptools warns that ``project.license`` as a TOML table is deprecated and that such builds stop being
supported on 2027-02-18: the license is an SPDX expression (PEP 639), which needs setuptools 77.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_license_is_an_spdx_expression_built_by_a_setuptools_that_reads_it() -> None:
    config = tomllib.loads(PYPROJECT.read_text())
    assert config["project"]["license"] == "Apache-2.0"  # a string, not {text = ...}
    assert not any(c.startswith("License ::") for c in config["project"].get("classifiers", []))
    (setuptools,) = [r for r in config["build-system"]["requires"] if r.startswith("setuptools")]
    found = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert found and int(found.group(1)) >= 77, setuptools

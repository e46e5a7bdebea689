"""The package list in pyproject.toml must match the package folders on disk.

An editable install finds every folder, so a package missing from the list only shows
up when someone installs a wheel: this test is where it shows up instead.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def packages_on_disk() -> set[str]:
    """Every folder with an __init__.py under pbxlink/ and web/ (which installs as pbxlink.web)."""
    found = set()
    for top, name in (("pbxlink", "pbxlink"), ("web", "pbxlink.web")):
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / top).parts
            if "__pycache__" not in relative:
                found.add(".".join((name, *relative)))
    return found


def test_pyproject_lists_exactly_the_packages_on_disk() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert len(listed) == len(setuptools["packages"]), "a package is listed twice"
    on_disk = packages_on_disk()
    assert not on_disk - listed, (
        f"add to [tool.setuptools] packages in pyproject.toml: {sorted(on_disk - listed)}"
    )
    assert not listed - on_disk, f"listed in pyproject.toml but no such package: {sorted(listed - on_disk)}"
    assert setuptools["package-dir"] == {"pbxlink.web": "web"}


def test_no_python_folder_lacks_an_init() -> None:
    """A folder of modules without __init__.py would be a namespace package, silently left out of a wheel."""
    for top in ("pbxlink", "web"):
        for module in (ROOT / top).rglob("*.py"):
            folder = module.parent
            assert (folder / "__init__.py").is_file(), (
                f"{folder.relative_to(ROOT)} has modules but no __init__.py"
            )

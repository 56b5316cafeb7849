"""Build hook: generate the gRPC stubs from proto/ in every build (wheel, wheel from sdist, editable).

Everything else about the package is declared in pyproject.toml.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithStubs(build_py):
    """Copy the package as usual, then write fresh stubs over whatever copies of them the tree had."""

    def run(self) -> None:
        super().run()
        # Editable installs import from the source tree, so the stubs go there (PEP 660 subcommand protocol).
        out = Path("src") if self.editable_mode else Path(self.build_lib)
        self.spawn([sys.executable, str(Path("proto", "generate.py")), str(out)])


setup(cmdclass={"build_py": BuildPyWithStubs})

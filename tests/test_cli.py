"""The ``actors`` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import actors
from actors.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_version_flag_prints_the_version(capsys):
    """``actors --version`` prints the package version."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"actors {actors.__version__}"


def test_help_without_arguments(capsys):
    """Without arguments the command prints its help and exits 0."""
    assert main([]) == 0
    assert "usage: actors" in capsys.readouterr().out


def test_console_script_is_installed():
    """The installed ``actors`` console script runs (as set up by README's pip install)."""
    exe = shutil.which("actors", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    if exe is None:
        pytest.skip("the package is not installed as a distribution here")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == f"actors {actors.__version__}"

"""Run the shipped field-allowlist tests with pytest against a temporary SQLite database."""

from __future__ import annotations

import tempfile
from pathlib import Path

from gateway.audit.selftest.evidence import EVIDENCE

# Independent of the working directory's pytest configuration; warnings fail, as in CI.
_INI = "[pytest]\nfilterwarnings =\n    error\naddopts = -ra\n"


def run(*, examples: int = 10, verbose: bool = False) -> tuple[int, str]:
    """Run the self-test; return pytest's exit code and the evidence summary."""
    import pytest  # the audit extra: pip install 'paysieve[audit]'

    with tempfile.TemporaryDirectory(prefix="paysieve-self-test-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text(_INI, encoding="utf-8")
        args = [
            "-c",
            str(ini),
            "--rootdir",
            tmp,
            "--basetemp",
            str(Path(tmp) / "run"),
            "-p",
            "no:cacheprovider",
            # Loaded through its entry point otherwise: slow to import, unused here.
            "-p",
            "no:schemathesis",
            "-p",
            "gateway.audit.selftest.plugin",
            f"--paysieve-examples={examples}",
            "-v" if verbose else "-q",
            "--pyargs",
            "gateway.audit.selftest",
        ]
        code = int(pytest.main(args))
    return code, EVIDENCE.summary()

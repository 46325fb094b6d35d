"""The wheel, installed as a user installs it, runs the whole path from an empty directory.

An editable install and ``pythonpath = ["."]`` hide a wheel that lacks a subpackage or a data
file: the suite once passed while the installed worker died on ``No module named
'streams.alerts'``. So this module builds the sdist and, from it, the wheel out of the
checkout's files (as ``python -m build`` and the Dockerfile do), installs the wheel into a
fresh virtualenv outside the checkout (dependencies from the package index, as a user gets
them), and drives the installed ``ostwatch`` script from an empty directory with a clean
environment: no PYTHONPATH, no OSTWATCH_* settings, no repository on ``sys.path``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import child_pid, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("ostwatch", "schemas", "producers", "streams", "sinks", "dashboards", "infra")
# Files inside the packages that belong to the repository, not to the installed package.
REPOSITORY_ONLY = (
    "dashboards/provisioning/*",  # Grafana's copy; the package writes it (`dashboards export`)
    "infra/cluster/*",  # the cluster's deployment files; the package writes them (`cluster config`)
    "infra/docker-compose.yml",  # Docker reads it from the repository
    "infra/README.md",
)
# Values for the options a report requires (`report monthly --period`).
REPORT_OPTION_VALUES = {"--period": "2024-03"}

# A simulated week of the province, then lines that must be rejected and events sent again.
START, DAYS, SCALE, SEED = "2024-03-24", 7, "0.3", "5"
BAD_LINES = (
    b"not json at all",
    b"",  # a blank line is rejected too (CONTRACT: every line is accounted for)
    b'{"event_type": "dose.dispensed", "schema_version": 1}',
    b'{"event_id": "0b5c3f0e-6d1e-4c55-9a51-3f4f6d1f2a10", "event_type": "stock.counted", '
    b'"schema_version": 1, "occurred_at": "2024-03-26T08:00:00+07:00", '
    b'"facility_id": "NOWHERE", "item": "MET-10", "quantity_on_hand": 5}',
)
RESENT = 25  # the first events sent again, byte for byte
BAD_AT = 1000  # the bad lines go in the middle of the file, from this line number on


def tracked_files() -> list[str]:
    """The checkout's files as a clone would have them (tracked, or new and not ignored)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("the installed-package test builds from a git checkout (git ls-files)")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def clean_env(venv: Path | None = None) -> dict[str, str]:
    """The environment without PYTHON*, OSTWATCH_* or a virtualenv of the checkout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "OSTWATCH_", "VIRTUAL_ENV"))
    }
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Installed:
    """The built sdist and wheel, and the virtualenv the wheel is installed in."""

    root: Path
    sdist: Path
    wheel: Path
    venv: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def run(
        self, *args: str, cwd: Path, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The installed console script, from ``cwd``."""
        result = subprocess.run(
            [str(self.venv / "bin" / "ostwatch"), *args],
            cwd=cwd,
            env=clean_env(self.venv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ostwatch {' '.join(args)} exited {result.returncode}: {result.stderr[-3000:]}"
            )
        return result

    def json(self, *args: str, cwd: Path) -> Any:
        """``--format json``: stdout must be exactly one JSON document."""
        return json.loads(self.run(*args, "--format", "json", cwd=cwd).stdout)

    def python(self, code: str, *args: str, cwd: Path) -> Any:
        """Run ``code`` in the virtualenv's python; it prints one JSON document.

        Without the system's zone files (as in a slim image): the time zone must come from
        the package's own dependencies.
        """
        result = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code, *args],
            cwd=cwd,
            env=clean_env(self.venv) | {"PYTHONTZPATH": ""},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    assert ROOT not in root.parents, "the virtualenv must live outside the checkout"
    source, dist, venv = root / "source", root / "dist", root / "venv"
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    seconds: dict[str, float] = {}

    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds["build"] = time.monotonic() - started
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-3000:]
    warnings = [line for line in output.splitlines() if re.search(r"warn|!!", line, re.I)]
    assert warnings == [], "the sdist and wheel must build without warnings:\n" + output[-6000:]
    (sdist,), (wheel,) = dist.glob("*.tar.gz"), dist.glob("*.whl")

    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        env=clean_env(venv),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds["install"] = time.monotonic() - started
    assert pip.returncode == 0, pip.stderr[-3000:]
    print(f"built in {seconds['build']:.1f} s, installed in {seconds['install']:.1f} s")
    return Installed(root, sdist, wheel, venv, seconds)


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Path]:
    """The directory every command runs in; it must stay empty."""
    directory = tmp_path / "empty"
    directory.mkdir()
    yield directory
    assert list(directory.iterdir()) == [], "a command wrote into the current directory"


def test_the_wheel_holds_every_file_of_the_packages(installed: Installed) -> None:
    shipped = set(zipfile.ZipFile(installed.wheel).namelist())
    in_packages = [name for name in tracked_files() if name.split("/")[0] in PRODUCT]

    def repository_only(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in REPOSITORY_ONLY)

    assert [n for n in in_packages if n not in shipped and not repository_only(n)] == []
    assert [n for n in in_packages if n in shipped and repository_only(n)] == []
    (dist_info,) = {name.split("/")[0] for name in shipped} - set(PRODUCT)
    assert dist_info.endswith(".dist-info"), "nothing but the packages and their metadata"
    assert "streams/alerts/engine.py" in shipped and "sinks/migrations/0001_intake.sql" in shipped
    assert f"{dist_info}/licenses/LICENSE" in shipped
    with zipfile.ZipFile(installed.wheel) as wheel:
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Dist: PyYAML" in metadata and "Requires-Dist: aiokafka" in metadata


IMPORT_EVERY_MODULE = """
import importlib, importlib.metadata, json, sys
from pathlib import Path

checkout, prefix = Path(sys.argv[1]), Path(sys.prefix).resolve()
found = {"modules": [], "outside": [], "checkout_on_path": []}
for file in importlib.metadata.files("ostwatch"):
    if file.suffix != ".py":
        continue
    name = ".".join(file.with_suffix("").parts).removesuffix(".__init__")
    origin = Path(importlib.import_module(name).__file__).resolve()
    found["modules"].append(name)
    if origin.is_relative_to(checkout) or not origin.is_relative_to(prefix):
        found["outside"].append([name, str(origin)])
on_path = [p for p in sys.path if p and Path(p).resolve().is_relative_to(checkout)]
found["checkout_on_path"] = on_path
print(json.dumps(found))
"""


def test_every_installed_module_imports_from_the_virtualenv(
    installed: Installed, empty: Path
) -> None:
    found = installed.python(IMPORT_EVERY_MODULE, str(ROOT), cwd=empty)
    assert found["outside"] == [] and found["checkout_on_path"] == []
    expected = {
        ".".join(Path(name).with_suffix("").parts).removesuffix(".__init__")
        for name in tracked_files()
        if name.endswith(".py") and name.split("/")[0] in PRODUCT
    }
    assert sorted(found["modules"]) == sorted(expected)


def the_ingest_file(installed: Installed, work: Path, empty: Path) -> tuple[Path, Path, dict]:
    """A simulated week from the installed simulator, with bad lines in the middle and the
    first events sent again at the end; returns the file, the registry and what to expect."""
    events, registry = work / "simulated.jsonl", work / "registry"
    installed.run("simulate", "--out", str(events), "--registry-out", str(registry),
                  "--start", START, "--days", str(DAYS), "--scale", SCALE, "--seed", SEED,
                  cwd=empty)  # fmt: skip
    simulated = events.read_bytes().splitlines()
    assert len(simulated) > BAD_AT + RESENT
    changed = json.loads(simulated[RESENT])  # the same event_id with other content
    changed["occurred_at"] = "2024-03-27T09:30:00+07:00"
    lines = [
        *simulated[: BAD_AT - 1],
        *BAD_LINES,
        *simulated[BAD_AT - 1 :],
        *simulated[:RESENT],
        json.dumps(changed).encode(),
    ]
    path = work / "ingest.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    doses = sum(b'"event_type":"dose.dispensed"' in line for line in simulated)
    return path, registry, {
        "counts": {"accepted": len(simulated), "rejected": len(BAD_LINES),
                   "duplicates": RESENT + 1},
        "rejected_lines": list(range(BAD_AT, BAD_AT + len(BAD_LINES))),
        "doses": doses,
    }  # fmt: skip


# Every `ostwatch report` subcommand of the installed package, with its required options.
LIST_REPORTS = """
import json
from infra.cli.report import report
print(json.dumps({
    name: [param.opts[0] for param in command.params if param.required]
    for name, command in report.commands.items()
}))
"""


def stop(up: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as an operator or a service manager stops it."""
    up.send_signal(signal.SIGTERM)
    try:
        return up.wait(120)
    except subprocess.TimeoutExpired:
        up.kill()
        up.wait()
        raise AssertionError("`ostwatch up` did not stop within 120 s of SIGTERM") from None


def test_the_whole_path_runs_from_an_empty_directory(
    installed: Installed, empty: Path, tmp_path: Path
) -> None:
    work, data = tmp_path / "work", tmp_path / "data"
    work.mkdir()
    path, registry, expected = the_ingest_file(installed, work, empty)
    at = ["--data-dir", str(data)]

    log = (work / "up.log").open("wb")
    started = time.monotonic()
    up = subprocess.Popen(
        [str(installed.venv / "bin" / "ostwatch"), "up", *at, "--no-live"],
        cwd=empty,
        env=clean_env(installed.venv),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        status = installed.run("status", *at, "--wait", "300", "--format", "json", cwd=empty,
                               check=False)  # fmt: skip
        assert status.returncode == 0, (status.stdout, (work / "up.log").read_text()[-3000:])
        assert json.loads(status.stdout)["ready"] is True
        ready = time.monotonic() - started
        children = [child_pid(up.pid, "infra.cli worker"), child_pid(up.pid, "tansu")]

        loaded = installed.json("registry", "load", str(registry), *at, cwd=empty)
        assert loaded["version"] == 1 and loaded["facilities"] > 10

        started = time.monotonic()
        ingest = installed.run("ingest", str(path), *at, "--format", "json", cwd=empty)
        ingest_seconds = time.monotonic() - started
        assert json.loads(ingest.stdout) == expected["counts"]

        reports = installed.python(LIST_REPORTS, cwd=empty)
        assert {"stock", "dispensing", "patients", "tests", "targets", "alerts", "rejected"} <= (
            reports.keys()
        )
        found = {}
        for name, required in sorted(reports.items()):
            missing = [option for option in required if option not in REPORT_OPTION_VALUES]
            assert not missing, f"report {name} requires {missing}: add a value to this test"
            values = [part for o in required for part in (o, REPORT_OPTION_VALUES[o])]
            found[name] = installed.json("report", name, *values, *at, cwd=empty)
        for name in ("stock", "dispensing", "patients", "tests", "targets"):
            assert found[name], f"report {name} is empty"
        dosed = sum(r["observed_doses"] + r["take_home_handouts"] for r in found["dispensing"])
        assert dosed == expected["doses"]
        assert sorted(row["line"] for row in found["rejected"]) == expected["rejected_lines"]

        open_alerts = installed.json("alerts", *at, cwd=empty)
        assert {a["alert_id"] for a in open_alerts} <= {a["alert_id"] for a in found["alerts"]}

        replayed = installed.json("replay", "--verify", *at, cwd=empty)
        assert replayed["equal"] is True and replayed["differences"] == []
        assert replayed["events"] == expected["counts"]["accepted"]
        audit = installed.json("audit", "verify", *at, cwd=empty)
        assert audit["intact"] is True and audit["events"] == expected["counts"]["accepted"]

        exported = installed.json("dashboards", "export", str(work / "provisioning"), cwd=empty)
        written = {Path(p).relative_to(work / "provisioning") for p in exported["written"]}
        repository = ROOT / "dashboards" / "provisioning"
        assert written == {p.relative_to(repository) for p in repository.rglob("*") if p.is_file()}
        for relative in written:
            assert (work / "provisioning" / relative).read_text(encoding="utf-8") == (
                repository / relative
            ).read_text(encoding="utf-8"), relative

        # The same file again, for a person: every event is a duplicate now.
        counts = expected["counts"]
        again = installed.run("ingest", str(path), *at, "--format", "table", cwd=empty).stdout
        assert again == (
            f"{sum(counts.values())} dòng / lines: chấp nhận / accepted 0, "
            f"từ chối / rejected {counts['rejected']}, "
            f"trùng / duplicates {counts['accepted'] + counts['duplicates']}\n"
        )
    finally:
        returncode = stop(up)
        log.close()
    assert returncode == 0, (work / "up.log").read_text()[-3000:]
    for pid in children:
        wait_gone(pid, timeout=30)
    assert "ostwatch: stopped" in (work / "up.log").read_text()
    print(
        f"installed in {installed.seconds['install']:.0f} s; stack ready in {ready:.0f} s; "
        f"{sum(expected['counts'].values())} lines ingested in {ingest_seconds:.0f} s"
    )

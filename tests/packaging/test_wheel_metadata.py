"""The published metadata: the client in the base install, the servers behind ``[server]``,
version ranges rather than pins (the pins live in constraints.txt)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[2]
SERVER_DISTRIBUTIONS = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg",
                        "nats-py", "numpy", "rapidfuzz", "prometheus-client", "typer", "rich",
                        "pydantic", "pydantic-settings", "phonenumbers", "structlog",
                        "rfc8785", "tomli-w", "jinja2", "uuid-utils"}
OTEL_DISTRIBUTIONS = {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
                      "opentelemetry-instrumentation-fastapi",
                      "opentelemetry-instrumentation-sqlalchemy"}
EXTRAS = ("server", "test", "otel")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel that ``pip wheel --no-deps`` builds from a copy of the sources (no download:
    the build uses the setuptools of this environment)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-build-isolation", "--no-index", "--quiet", "-w", str(out),
                             str(source)], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    [built] = out.glob("numident-*.whl")
    return zipfile.ZipFile(built)


def metadata(wheel: zipfile.ZipFile) -> Message:
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(wheel.read(name).decode())


def requirements(wheel: zipfile.ZipFile) -> list[Requirement]:
    return [Requirement(line) for line in metadata(wheel).get_all("Requires-Dist") or []]


def extra_of(requirement: Requirement) -> str | None:
    marker = requirement.marker
    if marker is None:
        return None
    extras = [extra for extra in EXTRAS if marker.evaluate({"extra": extra})]
    assert len(extras) == 1, f"{requirement} belongs to {extras}"
    return extras[0]


def test_every_requirement_is_a_range_with_a_lower_and_an_upper_bound(
        wheel: zipfile.ZipFile) -> None:
    """No ``==`` pin in the published metadata: each requirement names the oldest version
    tested (``>=``) and stops before the next major one (``<``)."""
    found = requirements(wheel)
    assert len(found) > 30
    for requirement in found:
        operators = {spec.operator for spec in requirement.specifier}
        assert not operators & {"==", "==="}, str(requirement)
        assert {">=", "<"} <= operators, str(requirement)


def test_the_base_install_is_the_client_and_the_servers_need_the_server_extra(
        wheel: zipfile.ZipFile) -> None:
    """Base requirements are the client's five; every server dependency is in ``[server]``;
    httpx2 replaces httpx."""
    found = requirements(wheel)
    base = {r.name.lower() for r in found if extra_of(r) is None}
    server = {r.name.lower() for r in found if extra_of(r) == "server"}
    assert base == {"cloudevents", "cryptography", "http-message-signatures", "httpx2",
                    "joserfc"}
    assert server == SERVER_DISTRIBUTIONS
    assert "httpx" not in {r.name.lower() for r in found}
    assert set(metadata(wheel).get_all("Provides-Extra") or []) == set(EXTRAS)


def test_traces_are_an_extra_that_the_tests_install_too(wheel: zipfile.ZipFile) -> None:
    """``numident[otel]`` holds the OpenTelemetry SDK, the OTLP exporter and the two
    instrumentations, with the same ranges in ``[test]`` so that the tracing tests run
    wherever the tests do."""
    found = requirements(wheel)
    otel = {str(r).split(";")[0] for r in found if extra_of(r) == "otel"}
    test = {str(r).split(";")[0] for r in found if extra_of(r) == "test"}
    assert {Requirement(r).name for r in otel} == OTEL_DISTRIBUTIONS
    assert otel <= test


def test_the_console_script_starts_at_the_guarded_entry(wheel: zipfile.ZipFile) -> None:
    """``numident`` enters through ``numident.cli.entry``, which names the server extra when
    the CLI's dependencies are missing; the wheel carries the client package."""
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "numident = numident.cli.entry:main" in wheel.read(name).decode()
    assert "numident/client/__init__.py" in wheel.namelist()


def test_the_wheel_carries_the_consoles_templates_and_assets(wheel: zipfile.ZipFile) -> None:
    """The console loads nothing from another origin, so htmx, the stylesheet and every
    template the servers render must be in the wheel, as in the source tree."""
    source = ROOT / "src"
    shipped = {path.relative_to(source).as_posix()
               for folder in ("templates", "static")
               for path in (source / "numident" / "web" / "console" / folder).rglob("*")
               if path.is_file()}
    assert {"numident/web/console/static/htmx.min.js",
            "numident/web/console/static/console.css",
            "numident/web/console/templates/operator/notices.html"} <= shipped
    assert shipped <= set(wheel.namelist())


def test_constraints_pin_every_requirement_of_the_metadata_inside_its_range(
        wheel: zipfile.ZipFile) -> None:
    """constraints.txt holds one exact version for every published requirement, and that
    version satisfies the published range (so CI tests what the ranges allow)."""
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    for requirement in requirements(wheel):
        name = requirement.name.lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]}"

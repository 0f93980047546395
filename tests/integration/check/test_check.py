"""`erpsync check` against the simulator over HTTP: all ✔; a changed schema, a missing mapping, a
token without permissions and a wrong password are each named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from erpsync.check import render_table, run_checks, sendable_documents
from erpsync.config import Settings, load_settings
from erpsync.sim.server import SimServer
from tests.fixtures.sim import SimFactory


def settings_for(sim: SimServer, tmp_path: Path, *, token: str | None = None, password: str | None = None,
                 mappings: str = "") -> tuple[Path, dict[str, str], Settings]:
    cfg = tmp_path / "erpsync.toml"
    cfg.write_text(f"""
[centra.soap]
url = "{sim.soap_url}"
username = "{sim.soap_user}"
[centra.graphql]
url = "{sim.graphql_url}"
[database]
url = "sqlite:///{tmp_path / 'db.sqlite'}"
{mappings}
""")
    env = {"ERPSYNC_CENTRA_SOAP_PASSWORD": password or sim.soap_password,
           "ERPSYNC_CENTRA_GRAPHQL_TOKEN": token or sim.token}
    return cfg, env, load_settings(cfg, env)


MAPPINGS = """
[push.warehouses]
"01" = "WH-MAIN"
"02" = "id:1"
[push.pricelists]
"SE" = "PL-SEK"
"""


def test_all_green_against_the_simulator_and_nothing_changes(sim: SimServer, tmp_path: Path) -> None:
    sim.generate(5)
    _cfg, _env, settings = settings_for(sim, tmp_path, mappings=MAPPINGS)
    before = sim.state()
    rows = run_checks(settings)
    table = render_table(rows)
    assert all(r.ok for r in rows), table
    names = " ".join(r.name for r in rows)
    for what in ("SOAP login", "rateLimits", "permissions", "schema", "documents", "warehouses", "pricelists"):
        assert what in names, what
    assert "Product:read" in table and "Warehouse:read" in table
    after = sim.state()
    assert after["soap"]["queue_depth"] == before["soap"]["queue_depth"] == 5  # nothing acknowledged
    assert after["graphql"]["counts"]["mutationsApplied"] == before["graphql"]["counts"]["mutationsApplied"]
    assert len(sendable_documents()) >= 10


def test_a_renamed_field_is_named(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(schema_renames=("Pricelist.currencyIsoCode=currencyCode",))
    _cfg, _env, settings = settings_for(sim, tmp_path)
    rows = {r.name: r for r in run_checks(settings)}
    bad = [r for r in rows.values() if not r.ok]
    assert bad, render_table(list(rows.values()))
    docs = next(r for r in bad if "documents" in r.name)
    assert "currencyIsoCode" in docs.detail and "LOOKUP_PRICELISTS" in docs.detail
    diff = next(r for r in bad if "contract" in r.name)
    assert "Pricelist.currencyIsoCode" in diff.detail and diff.fix


def test_missing_mapping_permissions_and_password_are_named(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(tokens={"narrow": frozenset({"Product:read", "Pricelist:read"})})
    _cfg, _env, settings = settings_for(
        sim, tmp_path, token="narrow", password="wrong",
        mappings='[push.pricelists]\n"SE" = "PL-SEK"\n"NO" = "PL-NOK"\n')
    rows = run_checks(settings)
    table = render_table(rows)
    by = {r.name.split(" ")[0] + r.name.split(" ")[1]: r for r in rows}
    assert not by["SOAPlogin"].ok and "password" in by["SOAPlogin"].fix
    perm = next(r for r in rows if "permissions" in r.name)
    assert not perm.ok and "Warehouse:read" in perm.detail and "SizeChart:read" in perm.detail, table
    pl = next(r for r in rows if r.name == "mapped pricelists exist in Centra")
    assert not pl.ok and "NO → PL-NOK" in pl.detail and "PL-SEK" not in pl.detail


def test_cli_exit_codes(sim_factory: SimFactory, sim: SimServer, tmp_path: Path) -> None:
    cfg, env, _ = settings_for(sim, tmp_path)
    run = [sys.executable, "-m", "erpsync", "--config", str(cfg), "check"]
    full_env = {**os.environ, **env}
    ok = subprocess.run([*run], env=full_env, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✘" not in ok.stdout.split("\n")[0] and "0 ✘" in ok.stdout
    assert sim.soap_password not in ok.stdout + ok.stderr and sim.token not in ok.stdout + ok.stderr
    changed = sim_factory(schema_renames=("Warehouse.externalId=externalID",))
    (tmp_path / "changed").mkdir()
    cfg2, env2, _ = settings_for(changed, tmp_path / "changed")
    bad = subprocess.run([sys.executable, "-m", "erpsync", "--config", str(cfg2), "check"],
                         env={**os.environ, **env2}, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Warehouse.externalId" in bad.stdout and "fix:" in bad.stdout


def test_graphql_source_probes_event_and_order_reads(sim: SimServer, tmp_path: Path) -> None:
    _cfg, _env, settings = settings_for(sim, tmp_path, mappings='[centra.events]\nsource = "graphql"\n')
    rows = run_checks(settings)
    perm = next(r for r in rows if "permissions" in r.name)
    assert perm.ok and "Event:read" in perm.detail and "Order:read" in perm.detail, render_table(rows)
    docs = next(r for r in rows if "documents" in r.name)
    assert docs.ok

"""Until every piece exists the demo does not pretend: it names what is missing and exits 2."""

from __future__ import annotations

import pytest

from erpsync.daemon import demo


def test_demo_names_missing_pieces_and_exits_2(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo, "missing_capabilities", lambda _jobs: {"pull": "erpsync.sync.pull"})
    real_find_spec = demo.importlib.util.find_spec
    monkeypatch.setattr(demo.importlib.util, "find_spec",
                        lambda name: None if name == "erpsync.sim.server" else real_find_spec(name))
    assert demo.run_demo(timeout_s=1) == demo.EXIT_MISSING
    err = capsys.readouterr().err
    assert "the pull job (erpsync.sync.pull)" in err and "the Centra simulator (erpsync.sim.server)" in err

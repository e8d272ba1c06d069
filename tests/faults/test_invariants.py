"""The fault suite's invariant checks find what they claim to: a workspace broken on purpose
(a champion's artifact altered, acknowledged rows missing) is reported, an intact one is not."""

from __future__ import annotations

from pathlib import Path

from faulthelp import MODEL, Ledger, Session, check_workspace


def test_the_checks_report_a_broken_workspace_and_pass_an_intact_one(tmp_path: Path) -> None:
    with Session(tmp_path, "sqlite", seed=1) as session:
        ledger, sample = session.ledger, session.sample
        assert check_workspace(session.config, ledger, sample, tmp_path) == []

        missing = Ledger(ledger.had_champion, [*ledger.row_ids, "no-such-day"], ledger.actuals + 3)
        found = check_workspace(session.config, missing, sample, tmp_path)
        assert "1 acknowledged training rows lost" in found
        assert "3 acknowledged actuals lost" in found

        with session.workspace() as ws:
            champion = ws.store.get_version(MODEL, str(ws.store.roles(MODEL).champion))
            path = Path(ws.artifacts.location(champion.artifact_uri))
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF
        path.write_bytes(bytes(data))
        found = check_workspace(session.config, ledger, sample, tmp_path)
        assert any(f"version {champion.version}'s artifact does not verify" in f for f in found)
        assert any("retrainer predict failed" in f for f in found), found

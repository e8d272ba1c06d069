"""Hostile and malformed backups: each is refused with exit 2 (InputError) naming the member
(and the line), and the target store and artifact folder are left exactly as they were."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backup_craft import (
    KEY,
    MODEL,
    config,
    consistent,
    file_entry,
    make_source,
    manifest_of,
    members_of,
    one_line,
    rows_of,
    run_cli,
    set_rows,
    snapshot,
    store_rows,
    workspace,
    write,
    write_entries,
)

from retrainer.apps import backup_restore
from retrainer.apps.backup import restore
from retrainer.apps.backup_format import RestoreLimits
from retrainer.core.errors import InputError, exit_code
from waits import SUBPROCESS

Members = dict[str, bytes]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real signed backup (two versions, training rows, a batch prediction)."""
    return make_source(tmp_path_factory.mktemp("source"))


@pytest.fixture
def plain(source: Path) -> Members:
    """The source backup's members with an unsigned manifest (for a target without a key)."""
    return consistent(members_of(source))


def _refused(tmp_path: Path, archive: Path, *, key: bytes | None = None, **limits: Any) -> str:
    """Restore ``archive`` into a fresh workspace: InputError (exit 2), nothing written
    anywhere under tmp_path; the message."""
    target = tmp_path / "target"
    with workspace(target, key=key) as ws:
        before = snapshot(tmp_path)
        with pytest.raises(InputError) as err:
            restore(ws, archive, limits=RestoreLimits(**limits) if limits else None)
        assert exit_code(err.value) == 2
        assert snapshot(tmp_path) == before
        assert not (target / "artifacts").exists()
        assert sum(store_rows(ws).values()) == 0 or store_rows(ws)["models"] == 0
    assert "Nothing was restored" in err.value.message
    return err.value.message


def test_the_source_restores_whole(tmp_path: Path, source: Path, plain: Members) -> None:
    """The crafting round-trips: an unchanged (re-manifested) backup restores."""
    with workspace(tmp_path / "target") as ws:
        result = restore(ws, write(tmp_path / "b.tar.gz", plain))
        assert result.artifacts == 2 and result.rows["versions"] == 2
        assert result.rows["prediction_inputs"] == 1 and result.rows["predictions"] == 20
        assert ws.store.roles(MODEL).champion == "1.1.0"
        uris = [v.artifact_uri for v in ws.store.list_versions(MODEL)]
        assert all(str(tmp_path / "source") not in u for u in uris)
    with workspace(tmp_path / "signed", key=KEY) as ws:  # the real signed one, with the key
        assert restore(ws, source).artifacts == 2


def test_artifact_uris_in_a_backup_are_not_trusted(tmp_path: Path, plain: Members) -> None:
    """A version's stored URI (absolute in backups made before URIs were relative, or edited
    to point anywhere) is replaced by the restored artifact's own key."""
    versions = rows_of(plain, "versions")
    versions[0]["artifact_uri"] = "/old/workspace/artifacts/weather/x.rtm"
    versions[1]["artifact_uri"] = "../../../etc/passwd"
    set_rows(plain, "versions", versions)
    with workspace(tmp_path / "target") as ws:
        restore(ws, write(tmp_path / "b.tar.gz", consistent(plain)))
        restored = ws.store.list_versions(MODEL)
        assert [v.artifact_uri for v in restored] == [
            f"{MODEL}/{v['sha256']}.rtm" for v in versions
        ]


def test_a_store_with_rows_but_no_models_is_not_a_target(tmp_path: Path, plain: Members) -> None:
    """A job run recorded in the new store (a scheduler started on it) would collide with a
    restored one: refused up front, naming the table, instead of a key error half-way."""
    from retrainer.core.clock import utcnow
    from retrainer.core.errors import ConflictError
    from retrainer.store import schema as t

    with workspace(tmp_path / "target") as ws:
        with ws.store.write() as conn:
            conn.execute(
                t.job_runs.insert(),
                [{"job": "maintain", "started_at": utcnow(), "outcome": "ok", "owner": "me"}],
            )
        with pytest.raises(ConflictError, match="already holds rows in job_runs"):
            restore(ws, write(tmp_path / "b.tar.gz", plain))
        assert store_rows(ws)["job_runs"] == 1 and store_rows(ws)["models"] == 0


# ---- finding: a model name with path characters wrote outside the artifact folder --------


def test_model_name_with_dots_writes_nothing_outside(tmp_path: Path, plain: Members) -> None:
    evil = "../../../escaped"
    versions = rows_of(plain, "versions")
    for v in versions:
        v["model"] = evil
        name = f"artifacts/{MODEL}/{v['sha256']}.rtm"
        plain[f"artifacts/{evil}/{v['sha256']}.rtm"] = plain.pop(name)
    set_rows(plain, "versions", versions)
    archive = write(tmp_path / "evil.tar.gz", consistent(plain))
    message = _refused(tmp_path, archive)
    assert "artifacts/../../../escaped/" in message and "climbs out with '..'" in message
    assert not list(tmp_path.parent.rglob("escaped"))


def test_model_name_in_a_row_is_checked(tmp_path: Path, plain: Members) -> None:
    versions = rows_of(plain, "versions")
    versions[1]["model"] = "../x"
    set_rows(plain, "versions", versions)
    message = _refused(tmp_path, write(tmp_path / "b.tar.gz", consistent(plain)))
    assert "tables/versions.jsonl line 2: model name '../x' is not valid" in message


def test_version_with_path_characters_is_refused(tmp_path: Path, plain: Members) -> None:
    roles = rows_of(plain, "roles")
    roles[0]["champion"] = "1.0.0/../../x"
    set_rows(plain, "roles", roles)
    message = _refused(tmp_path, write(tmp_path / "b.tar.gz", consistent(plain)))
    assert "tables/roles.jsonl line 1: version '1.0.0/../../x' is not valid" in message


# ---- hostile archive members ----------------------------------------------------------


def _link(name: str, kind: bytes, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (file_entry("../outside.txt", b"x"), "'../outside.txt' is a path that climbs out"),
        (file_entry("/tmp/abs.txt", b"x"), "'/tmp/abs.txt' is an absolute path"),
        (_link("tables/models.jsonl", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link"),
        (_link("tables/models.jsonl", tarfile.LNKTYPE, "manifest.json"), "is a hard link"),
        (_link("tables", tarfile.DIRTYPE, ""), "member tables is a folder"),
        (file_entry("tables/secrets.jsonl", b"{}"), "'tables/secrets.jsonl' is not a name"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "folder", "unknown-table"],
)
def test_hostile_member_is_refused(
    tmp_path: Path, plain: Members, entry: tuple[tarfile.TarInfo, bytes | None], said: str
) -> None:
    entries = [file_entry(n, d) for n, d in plain.items()]
    archive = write_entries(tmp_path / "b.tar.gz", [entry, *entries])
    assert said in _refused(tmp_path, archive)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_duplicate_member_is_refused(tmp_path: Path, plain: Members) -> None:
    entries = [file_entry(n, d) for n, d in plain.items()]
    again = file_entry("tables/models.jsonl", plain["tables/models.jsonl"])
    message = _refused(tmp_path, write_entries(tmp_path / "b.tar.gz", [*entries, again]))
    assert "member tables/models.jsonl is in the archive twice" in message


# ---- malformed manifests and tables ---------------------------------------------------


def _table_line(table: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[Members], None]:
    def change(m: Members) -> None:
        rows = rows_of(m, table)
        edit(rows[0])
        set_rows(m, table, rows)

    return change


def _raw_line(table: str, line: bytes) -> Callable[[Members], None]:
    def change(m: Members) -> None:
        m[f"tables/{table}.jsonl"] = m[f"tables/{table}.jsonl"] + b"\n" + line

    return change


def _duplicate(table: str) -> Callable[[Members], None]:
    def change(m: Members) -> None:
        rows = rows_of(m, table)
        set_rows(m, table, [*rows, rows[0]])

    return change


MALFORMED: dict[str, tuple[Callable[[Members], None], str]] = {
    "not-json-line": (
        _raw_line("deployments", b"{not json"),
        "deployments.jsonl line 3 is not valid JSON",
    ),
    "deep-line": (
        _raw_line("deployments", b"[" * 200_000 + b"]" * 200_000),
        "deployments.jsonl line 3 is not valid JSON",
    ),
    "overflow": (
        _table_line("predictions", lambda r: r.update(proba=10**400)),
        "predictions.jsonl line 1: column 'proba' is 100000000000000000000000000000",
    ),
    "inf": (
        _raw_line("deployments", b'{"id": 1e999}'),
        "deployments.jsonl line 3 is not valid JSON",
    ),
    "list-line": (_raw_line("deployments", b"[1, 2]"), "deployments.jsonl line 3 is a JSON list"),
    "nan": (_raw_line("deployments", b'{"id": NaN}'), "deployments.jsonl line 3 is not valid JSON"),
    "bad-datetime": (
        _table_line("versions", lambda r: r.update(created_at="yesterday")),
        "versions.jsonl line 1: column 'created_at' is 'yesterday', not an ISO datetime",
    ),
    "missing-column": (
        _table_line("versions", lambda r: r.pop("sha256")),
        "versions.jsonl line 1: required column 'sha256' of table versions is missing",
    ),
    "unknown-column": (
        _table_line("models", lambda r: r.update(owner="eve")),
        "models.jsonl line 1: 'owner' is not a column of table models",
    ),
    "wrong-type": (
        _table_line("versions", lambda r: r.update(n_rows="many")),
        "versions.jsonl line 1: column 'n_rows' is 'many', expected a whole number",
    ),
    "bad-sha": (
        _table_line("versions", lambda r: r.update(sha256="../../etc/passwd")),
        "versions.jsonl line 1: column 'sha256' is '../../etc/passwd', expected 64",
    ),
    "duplicate-version": (_duplicate("versions"), "versions.jsonl line 3 repeats a row"),
    "duplicate-prediction": (_duplicate("predictions"), "predictions.jsonl line 21 repeats a row"),
    "empty-line": (_raw_line("deployments", b""), "deployments.jsonl line 3 is empty"),
    "segment-without-member": (
        lambda m: m.pop(next(n for n in m if n.startswith("segments/"))),
        "has no member segments/",
    ),
    "member-without-row": (
        lambda m: m.update({"segments/999.parquet": b"PAR1"}),
        "member segments/999.parquet belongs to no row of tables/segments.jsonl",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_table_is_refused(tmp_path: Path, plain: Members, case: str) -> None:
    change, said = MALFORMED[case]
    change(plain)
    message = _refused(tmp_path, write(tmp_path / "b.tar.gz", consistent(plain)))
    assert said in message, message


def _manifest_change(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Members], None]:
    def change(m: Members) -> None:
        manifest = manifest_of(m)
        edit(manifest)
        m["manifest.json"] = json.dumps(manifest).encode()

    return change


def _flip(name: str) -> Callable[[Members], None]:
    def change(m: Members) -> None:
        victim = next(n for n in m if n.startswith(name))
        m[victim] = m[victim][:-1] + bytes([m[victim][-1] ^ 1])

    return change


LIES: dict[str, tuple[Callable[[Members], None], str]] = {
    "not-json": (
        lambda m: m.update({"manifest.json": b"{oops"}),
        "manifest.json is not valid JSON",
    ),
    "deep": (
        lambda m: m.update({"manifest.json": b"[" * 200_000 + b"]" * 200_000}),
        "manifest.json is not valid JSON",
    ),
    "not-object": (
        lambda m: m.update({"manifest.json": b"[]"}),
        "manifest.json is a JSON list, expected an object",
    ),
    "no-files": (
        _manifest_change(lambda d: d.pop("files")),
        "manifest.json misses the key 'files'",
    ),
    "no-manifest": (lambda m: m.pop("manifest.json"), "it has no manifest.json"),
    "files-not-object": (
        _manifest_change(lambda d: d.update(files=[])),
        "manifest.json key 'files' is a list, expected a JSON object",
    ),
    "newer-format": (_manifest_change(lambda d: d.update(format=99)), "has format 99"),
    "hash": (_flip("artifacts/"), "does not match its checksum in manifest.json"),
    "size": (
        _manifest_change(lambda d: d["sizes"].update({"tables/models.jsonl": 10**12})),
        "bytes, manifest.json says 1,000,000,000,000",
    ),
    "count": (
        _manifest_change(lambda d: d["rows"].update(predictions=7)),
        "manifest.json says 7 rows of predictions, the backup holds 20",
    ),
    "training-rows": (
        _manifest_change(lambda d: d["rows"].update(training_rows=5)),
        "says 5 rows of training_rows, the backup holds 1,095",
    ),
    "unlisted": (
        _manifest_change(lambda d: d["files"].pop("tables/job_runs.jsonl")),
        "member tables/job_runs.jsonl is not listed in manifest.json",
    ),
    "listed-outside": (
        _manifest_change(lambda d: d["files"].update({"../../etc/passwd": "0" * 64})),
        "manifest.json lists '../../etc/passwd', which is not a member a backup holds",
    ),
    "listed-missing": (
        lambda m: m.pop("tables/job_runs.jsonl"),
        "member tables/job_runs.jsonl is missing or does not match",
    ),
}


@pytest.mark.parametrize("case", list(LIES))
def test_manifest_that_lies_is_refused(tmp_path: Path, plain: Members, case: str) -> None:
    change, said = LIES[case]
    change(plain)
    message = _refused(tmp_path, write(tmp_path / "b.tar.gz", plain))
    assert said in message, message


def test_truncated_archive_is_refused(tmp_path: Path, source: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    assert "is damaged or truncated" in _refused(tmp_path, cut, key=KEY)


# ---- limits: decompression bombs, long lines --------------------------------------------


def test_decompression_bomb_stops_at_its_header(tmp_path: Path, plain: Members) -> None:
    plain["tables/job_runs.jsonl"] = b"{}" + b" " * (8 << 20)  # 8 MiB of spaces: ~8 KiB packed
    archive = write(tmp_path / "bomb.tar.gz", consistent(plain))
    assert archive.stat().st_size < 2 << 20
    message = _refused(tmp_path, archive, unpacked_bytes=4 << 20)
    assert "member tables/job_runs.jsonl takes the archive past 4 MiB unpacked" in message
    assert "--max-unpacked" in message


def test_line_longer_than_the_limit_is_refused(tmp_path: Path, plain: Members) -> None:
    plain["tables/job_runs.jsonl"] = b'{"x": "' + b"a" * (2 << 20) + b'"}'
    archive = write(tmp_path / "long.tar.gz", consistent(plain))
    message = _refused(tmp_path, archive, line_bytes=1 << 20)
    assert (
        "tables/job_runs.jsonl line 1 is longer than 1 MiB" in message and "--max-line" in message
    )


# ---- finding: unsigned or re-signed backups with the key set ---------------------------


def _swap_artifact(m: Members) -> None:
    """Put the first version's artifact bytes under the second version: a model swapped."""
    versions = rows_of(m, "versions")
    first, second = versions[0], versions[1]
    m[f"artifacts/{MODEL}/{second['sha256']}.rtm"] = m[f"artifacts/{MODEL}/{first['sha256']}.rtm"]
    second["sha256"], second["hmac"] = first["sha256"], None
    set_rows(m, "versions", versions)
    m.pop(f"artifacts/{MODEL}/{second['sha256']}.rtm", None)


def test_unsigned_backup_is_refused_with_the_key(tmp_path: Path, source: Path) -> None:
    crafted = members_of(source)
    versions = rows_of(crafted, "versions")
    versions[1]["hmac"] = None
    set_rows(crafted, "versions", versions)
    archive = write(tmp_path / "b.tar.gz", consistent(crafted))  # checksums recomputed, no hmac
    message = _refused(tmp_path, archive, key=KEY)
    assert "is not signed, and RETRAINER_SIGNING_KEY is set" in message
    assert "retrainer sign" in message


def test_edited_signed_backup_fails_its_signature(tmp_path: Path, source: Path) -> None:
    crafted = members_of(source)
    signature = manifest_of(crafted)["hmac"]
    _swap_artifact(crafted)
    edited = consistent(crafted)
    manifest = manifest_of(edited)
    manifest["hmac"] = signature  # the old signature over the new checksums
    edited["manifest.json"] = json.dumps(manifest).encode()
    message = _refused(tmp_path, write(tmp_path / "b.tar.gz", edited), key=KEY)
    assert "the signature of manifest.json does not verify" in message


def test_signed_backup_with_an_unsigned_version_is_refused(tmp_path: Path, source: Path) -> None:
    crafted = members_of(source)
    versions = rows_of(crafted, "versions")
    versions[0]["hmac"] = None
    set_rows(crafted, "versions", versions)
    archive = write(tmp_path / "b.tar.gz", consistent(crafted, key=KEY))  # signed by the owner
    message = _refused(tmp_path, archive, key=KEY)
    assert "(its version row has no hmac)" in message and "1.0.0" in message


def test_version_hmac_that_does_not_verify_is_refused(tmp_path: Path, source: Path) -> None:
    crafted = members_of(source)
    versions = rows_of(crafted, "versions")
    versions[0]["hmac"] = "0" * 64
    set_rows(crafted, "versions", versions)
    archive = write(tmp_path / "b.tar.gz", consistent(crafted, key=KEY))
    assert "fails its HMAC check" in _refused(tmp_path, archive, key=KEY)


def test_signed_backup_without_the_key_is_refused(tmp_path: Path, source: Path) -> None:
    message = _refused(tmp_path, source)
    assert "is signed, but RETRAINER_SIGNING_KEY is not set" in message


# ---- through the real CLI, in a subprocess ------------------------------------------------


def _cli_refuses(
    tmp_path: Path, archive: Path, said: str, *args: str, key: bytes | None = None
) -> None:
    cfg = config(tmp_path / "cli")
    before = snapshot(tmp_path)
    res = run_cli(cfg, "restore", str(archive), *args, key=key)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert said in one_line(res.stdout + res.stderr)
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("cli/store.db")} == {
        k: v for k, v in before.items() if not k.startswith("cli/store.db")
    }
    assert not (tmp_path / "cli" / "artifacts").exists()
    assert all(v == "0" or k.endswith("alembic_version") for k, v in after.items() if ":" in k)


def test_cli_refuses_traversal(tmp_path: Path, plain: Members) -> None:
    versions = rows_of(plain, "versions")
    versions[0]["model"] = "../../x"
    set_rows(plain, "versions", versions)
    archive = write(tmp_path / "b.tar.gz", consistent(plain))
    _cli_refuses(tmp_path, archive, "model name '../../x' is not valid")


def test_cli_refuses_a_bomb(tmp_path: Path, plain: Members) -> None:
    plain["tables/job_runs.jsonl"] = b"{}" + b" " * (4 << 20)
    archive = write(tmp_path / "bomb.tar.gz", consistent(plain))
    _cli_refuses(tmp_path, archive, "past 1 MiB unpacked", "--max-unpacked", "1")


def test_cli_refuses_an_unsigned_backup_with_the_key(tmp_path: Path, plain: Members) -> None:
    archive = write(tmp_path / "b.tar.gz", plain)
    _cli_refuses(tmp_path, archive, "is not signed, and RETRAINER_SIGNING_KEY is set", key=KEY)


def test_cli_refuses_a_symlink_member(tmp_path: Path, plain: Members) -> None:
    entries = [file_entry(n, d) for n, d in plain.items()]
    link = _link("tables/models.jsonl", tarfile.SYMTYPE, "/etc/passwd")
    archive = write_entries(tmp_path / "b.tar.gz", [link, *entries])
    _cli_refuses(tmp_path, archive, "member tables/models.jsonl is a symbolic link")


def test_cli_refuses_bad_datetime(tmp_path: Path, plain: Members) -> None:
    _table_line("deployments", lambda r: r.update(created_at="2024-13-45"))(plain)
    archive = write(tmp_path / "b.tar.gz", consistent(plain))
    _cli_refuses(tmp_path, archive, "deployments.jsonl line 1: column 'created_at' is '2024-13-45'")


# ---- duplicate rows, on both stores --------------------------------------------------------


def test_duplicate_rows_leave_either_store_empty(
    tmp_path: Path, plain: Members, store_url: str
) -> None:
    _duplicate("deployments")(plain)
    archive = write(tmp_path / "b.tar.gz", consistent(plain))
    with workspace(tmp_path / "target", store=store_url) as ws:
        with pytest.raises(
            InputError, match=r"deployments.jsonl line 3 repeats a row given before \(id=1\)"
        ):
            restore(ws, archive)
        assert store_rows(ws)["models"] == store_rows(ws)["versions"] == 0
        assert not (tmp_path / "target" / "artifacts").exists()


# ---- finding: a small backup holding a huge table took the restore to gigabytes ---------

_RSS = (  # the CLI, then its peak RSS (VmHWM: this process's own, not inherited at exec)
    "import atexit, sys\n"
    "atexit.register(lambda: print(next(line for line in open('/proc/self/status') "
    "if line.startswith('VmHWM')), file=sys.stderr))\n"
    "from retrainer.cli.main import main\n"
    "sys.argv = ['retrainer'] + sys.argv[1:]\n"
    "main()\n"
)


def test_a_table_bomb_is_read_in_bounded_memory(tmp_path: Path, plain: Members) -> None:
    """64 MiB of one repeated prediction row, packed to a fraction of a MiB: the restore
    streams it and stops at the repeated row (the whole table was held, parsed, before:
    17 bytes of memory per byte of table)."""
    line = plain["tables/predictions.jsonl"].splitlines()[0]
    plain["tables/predictions.jsonl"] = b"\n".join([line] * ((64 << 20) // len(line)))
    archive = write(tmp_path / "bomb.tar.gz", consistent(plain))
    assert archive.stat().st_size < 4 << 20
    cfg = config(tmp_path / "cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    res = subprocess.run(
        [sys.executable, "-c", _RSS, "-c", str(cfg), "restore", str(archive)],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS,
    )
    said = one_line(res.stdout + res.stderr)
    assert res.returncode == 2 and "predictions.jsonl line 2 repeats a row" in said
    peak_mib = int(res.stderr.split("VmHWM:")[1].split()[0]) / 1024
    assert peak_mib < 400, f"restore peaked at {peak_mib:.0f} MiB for a 64 MiB table"


def test_archive_swapped_after_its_check_is_refused(
    tmp_path: Path, plain: Members, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive is replaced between the check and the reads that restore it: what is
    restored must be what was checked."""
    archive = write(tmp_path / "b.tar.gz", plain)
    versions = rows_of(plain, "versions")
    versions[0]["reason"] = "swapped in after the check"
    set_rows(plain, "versions", versions)
    swapped = write(tmp_path / "swapped.tar.gz", consistent(plain))
    real_scan = backup_restore.scan

    def scan_then_swap(*args: Any) -> Any:
        checked = real_scan(*args)
        swapped.replace(archive)
        return checked

    monkeypatch.setattr(backup_restore, "scan", scan_then_swap)
    message = _refused(tmp_path, archive)
    assert "member tables/versions.jsonl changed while it was restored" in message


@pytest.mark.parametrize("first", [True, False], ids=["first-header", "later-header"])
def test_oversized_extended_header_is_refused(tmp_path: Path, plain: Members, first: bool) -> None:
    """A PAX header declaring 64 MiB (zeros, so it packs to almost nothing): tarfile would read
    it whole into memory before any member is seen."""
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, 64 << 20
    head = pax.tobuf(format=tarfile.USTAR_FORMAT) + bytes(pax.size)
    body = b"".join(
        info.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)
        for info, data in (file_entry(n, d) for n, d in plain.items())
    )
    archive = tmp_path / "pax.tar.gz"
    with gzip.open(archive, "wb") as gz:
        gz.write(head + body if first else body[: -0 or None] + head)
        gz.write(bytes(1024))
    message = _refused(tmp_path, archive)
    assert "an extended tar header of 67,108,864 bytes" in message


_ODD_VALUES = [None, "", "x" * 300, -1, 2**70, 1.5, True, [], {}, "2024-99-01", "\ud800", "a\x00b"]


def test_mutated_lines_are_restored_or_refused_never_a_crash(
    tmp_path: Path, plain: Members
) -> None:
    """40 backups with one line changed (bytes flipped, or a value swapped for an odd one),
    each with a manifest that agrees: each restores or is refused as bad input."""
    rng = random.Random(15)
    tables = [n for n in plain if n.startswith("tables/") and plain[n]]
    outcomes = []
    for i in range(40):
        m = dict(plain)
        name = rng.choice(tables)
        lines = m[name].split(b"\n")
        k = rng.randrange(len(lines))
        if i % 2:
            line = bytearray(lines[k])
            for _ in range(rng.randint(1, 3)):
                line[rng.randrange(len(line))] = rng.choice(b'{}[]":,019-.eE\\tfnx\x00\xff')
            lines[k] = bytes(line)
        else:
            row = json.loads(lines[k])
            row[rng.choice(list(row))] = rng.choice(_ODD_VALUES)
            lines[k] = json.dumps(row).encode()
        m[name] = b"\n".join(lines)
        archive = write(tmp_path / f"m{i}.tar.gz", consistent(m))
        with workspace(tmp_path / f"t{i}") as ws:
            try:
                restore(ws, archive)
                outcomes.append("restored")
            except InputError as err:
                assert "Nothing was restored" in err.message
                assert store_rows(ws)["models"] == 0
                outcomes.append("refused")
    assert "refused" in outcomes

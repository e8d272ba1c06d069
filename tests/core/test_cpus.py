"""available_cpus: the CPU affinity, capped by the cgroup quota (v2 or v1), at least 1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrainer.core import cpus
from retrainer.core.cpus import affinity_cpus, available_cpus, cgroup_cpu_limit


def v2(root: Path, text: str) -> Path:
    (root / "cpu.max").write_text(text)
    return root


def v1(root: Path, quota: str, period: str = "100000") -> Path:
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    return root


@pytest.fixture
def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process allowed on eight cores, so the quota is what limits it."""
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 8)


def test_v2_quota_is_rounded_up(tmp_path: Path, eight_cores: None) -> None:
    root = v2(tmp_path, "250000 100000\n")
    assert cgroup_cpu_limit(root) == 3
    assert available_cpus(root) == 3


def test_v2_max_means_no_quota(tmp_path: Path, eight_cores: None) -> None:
    root = v2(tmp_path, "max 100000\n")
    assert cgroup_cpu_limit(root) is None
    assert available_cpus(root) == 8


def test_v1_quota_is_rounded_up(tmp_path: Path, eight_cores: None) -> None:
    root = v1(tmp_path, "150000")
    assert cgroup_cpu_limit(root) == 2
    assert available_cpus(root) == 2


def test_v1_minus_one_means_no_quota(tmp_path: Path, eight_cores: None) -> None:
    root = v1(tmp_path, "-1")
    assert cgroup_cpu_limit(root) is None
    assert available_cpus(root) == 8


def test_v2_is_read_before_v1(tmp_path: Path, eight_cores: None) -> None:
    root = v1(v2(tmp_path, "100000 100000"), "400000")
    assert available_cpus(root) == 1


def test_missing_files_mean_no_quota(tmp_path: Path, eight_cores: None) -> None:
    assert cgroup_cpu_limit(tmp_path) is None
    assert cgroup_cpu_limit(tmp_path / "absent") is None
    assert available_cpus(tmp_path) == 8


def test_half_a_v1_pair_means_no_quota(tmp_path: Path, eight_cores: None) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000")
    assert available_cpus(tmp_path) == 8


@pytest.mark.parametrize("text", ["", "garbage", "abc 100000", "100000 0", "0 100000"])
def test_unreadable_quota_means_no_quota(tmp_path: Path, eight_cores: None, text: str) -> None:
    assert cgroup_cpu_limit(v2(tmp_path, text)) is None


@pytest.mark.parametrize("quota", ["50000", "1"])
def test_quota_below_one_cpu_gives_one(tmp_path: Path, eight_cores: None, quota: str) -> None:
    assert cgroup_cpu_limit(v2(tmp_path, f"{quota} 100000")) == 1
    assert available_cpus(tmp_path) == 1


def test_quota_above_the_affinity_does_not_raise_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 2)
    assert available_cpus(v2(tmp_path, "1600000 100000")) == 2


def test_affinity_counts_the_allowed_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert affinity_cpus() == 3


def test_affinity_falls_back_to_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert affinity_cpus() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert affinity_cpus() == 1


def test_this_process_gets_at_least_one_and_at_most_its_affinity() -> None:
    assert 1 <= available_cpus() <= affinity_cpus()

"""explorer.threads: the CPU quota read from cgroup files, the thread count, the OpenMP policy in a fresh process."""
import os
import subprocess
import sys

import pytest
import torch

from explorer.threads import configure_threads, cpu_quota, cpu_threads


def test_cpu_threads_follow_the_quota(tmp_path, monkeypatch):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cpu_quota(tmp_path) == 2
    monkeypatch.setenv("CPU_CORES", "3")
    assert cpu_threads() == 3
    before = torch.get_num_threads()
    try:
        assert configure_threads("passive") == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="allowed: passive, spin"):
        configure_threads("busy")


@pytest.mark.parametrize("wait,env,policy", [("passive", {}, "PASSIVE"), ("spin", {}, None),
                                             ("passive", {"GOMP_SPINCOUNT": "300000"}, None),
                                             ("spin", {"OMP_WAIT_POLICY": "PASSIVE"}, "PASSIVE")])
def test_wait_policy_is_set_before_torch_loads(wait, env, policy):
    """In a fresh process: the policy the caller asked for, unless the environment already says otherwise."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = ("import os, sys; from explorer.threads import configure_threads; "
            f"configure_threads({wait!r}); assert 'torch' in sys.modules; print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**base, **env}, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == str(policy)

"""Egress policies from Python: ``egress=``, ``Instance.set_egress``, ``Instance.egress_log``
(sync and asyncio), bad policies. The stand-in outside and the full tool matrix (curl, git, pip,
apt) are in headjack/tests/egress.rs; here a busybox instance's requests are refused by the proxy
and logged, which needs no outside server."""

from __future__ import annotations

import pytest

import headjack

from conftest import BASE, containers_of, docker

LABELS = {"io.headjack.test": "1"}


def networks_of(instance_id: str) -> list[str]:
    out = docker("network", "ls", "-q", "--filter", f"name=headjack-{instance_id}")
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_egress_allow_list_log_and_live_change() -> None:
    with headjack.spawn(base=BASE, labels=LABELS, egress={"allow": ["allowed.test"]}) as inst:
        assert networks_of(inst.id) != []
        r = inst.exec(["sh", "-c", "wget -q -O- http://denied.test/ 2>&1"])
        assert r.exit_code != 0
        assert "403 Forbidden by headjack egress policy (denied.test:80)" in r.stdout_text
        # A program ignoring the proxy reaches nothing.
        r = inst.exec(["sh", "-c", "http_proxy= timeout 5 wget -q -O- http://192.0.2.1/"])
        assert r.exit_code != 0
        log = inst.egress_log()
        assert any(d.host == "denied.test" and not d.allowed and d.via == "http" for d in log), log
        assert all(isinstance(d, headjack.EgressDecision) and d.reason for d in log)

        inst.set_egress({"allow": ["denied.test"]})
        r = inst.exec(["sh", "-c", "wget -q -O- http://allowed.test/ 2>&1"])
        assert "403 Forbidden by headjack egress policy (allowed.test:80)" in r.stdout_text
        assert any(d.host == "allowed.test" and not d.allowed for d in inst.egress_log())

        with pytest.raises(headjack.InvalidArgumentError, match="a..b"):
            inst.set_egress({"deny": ["a..b"]})
        with pytest.raises(TypeError, match="allow"):
            inst.set_egress({"permit": ["x"]})  # type: ignore[dict-item]
    assert containers_of(inst.id) == []
    assert networks_of(inst.id) == []


def test_bad_egress_policies_are_clear_errors() -> None:
    with pytest.raises(headjack.InvalidArgumentError, match="https://pypi.org"):
        headjack.spawn(base=BASE, labels=LABELS, egress={"allow": ["https://pypi.org"]})
    with pytest.raises(headjack.InvalidArgumentError, match="network `none`"):
        headjack.spawn(base=BASE, labels=LABELS, egress={"allow": []}, network="none")
    with pytest.raises(TypeError, match="egress"):
        headjack.spawn(base=BASE, labels=LABELS, egress=["pypi.org"])  # type: ignore[arg-type]
    with headjack.spawn(base=BASE, labels=LABELS) as plain:
        with pytest.raises(headjack.ConflictError, match="without an egress policy"):
            plain.set_egress({"allow": ["pypi.org"]})


async def test_async_egress() -> None:
    async with headjack.AsyncClient() as hj:
        async with await hj.spawn(BASE, labels=LABELS, egress={"deny": ["denied.test"]}) as inst:
            r = await inst.exec(["sh", "-c", "wget -q -O- http://denied.test/ 2>&1"])
            assert "403 Forbidden by headjack egress policy" in r.stdout_text
            log = await inst.egress_log()
            assert any(d.host == "denied.test" and not d.allowed for d in log)
            await inst.set_egress({"deny": []})

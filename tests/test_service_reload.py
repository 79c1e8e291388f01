"""Hot reload: a changed tree is swapped in whole; a tree that fails keeps the old one serving and says why."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from cmap_policy.load import load_policy
from cmap_policy.service import ServiceConfig

from .service_support import copy_policy, serve, wait_until

LINE = {"code": "T1016", "date": "2026-02-10", "modifiers": ["93"]}


def _end_t1016(root: Path) -> None:
    path = root / "codes" / "T1016.json"
    data = json.loads(path.read_text())
    data["periods"][-1]["end"] = "2026-01-31"
    data["periods"][-1]["ended_in"] = load_policy(root).latest.id
    data["periods"][-1]["removed"] = True  # the code leaves the table: a later line is not payable
    path.write_text(json.dumps(data, indent=2))


def test_a_changed_tree_is_swapped_in_and_every_answer_names_one_policy(tmp_path: Path) -> None:
    root = copy_policy(tmp_path)
    old_hash = load_policy(root).hash
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    with serve(ServiceConfig(policy=root, access_log=False)) as server:
        def load() -> None:  # batches in flight while the tree changes
            with server.client() as c:
                while not stop.is_set():
                    body = "\n".join(json.dumps(LINE) for _ in range(500))
                    got = c.post("/v1/decide/batch", content=body)
                    results = [json.loads(x) for x in got.text.splitlines()]
                    assert len(results) == 500
                    seen.append({"header": got.headers["x-policy-hash"],
                                 "hashes": {r["policy_hash"] for r in results},
                                 "outcomes": {r["outcome"] for r in results}})

        worker = threading.Thread(target=load)
        worker.start()
        try:
            with server.client() as c:
                assert c.post("/v1/decide", json=LINE).json()["outcome"] == "payable"
                _end_t1016(root)
                health = wait_until(lambda: (h := c.get("/health").json())["policy_hash"] != old_hash and h,
                                    what="the reload")
                assert health["reloads"] == 1 and "reload_error" not in health
                after = c.post("/v1/decide", json=LINE).json()
                metrics = c.get("/metrics").text
        finally:
            stop.set()
            worker.join()
    new_hash = load_policy(root).hash
    assert health["policy_hash"] == new_hash and after["policy_hash"] == new_hash
    assert after["outcome"] == "not_payable" and after["reasons"][0]["code"] == "OUTSIDE_EFFECTIVE_DATES"
    assert "cmap_policy_reloads_total 1.0" in metrics and f'policy_hash="{new_hash}"' in metrics
    assert f'policy_hash="{old_hash}"' not in metrics
    assert seen
    for response in seen:  # one release and hash per response, the header's
        assert response["hashes"] == {response["header"]}
        assert len(response["outcomes"]) == 1


def test_a_tree_that_fails_keeps_the_old_policy_serving_and_reports_where(tmp_path: Path) -> None:
    root = copy_policy(tmp_path)
    good = load_policy(root).hash
    with serve(ServiceConfig(policy=root, access_log=False)) as server, server.client() as c:
        broken = root / "codes" / "T1016.json"
        text = broken.read_text()
        broken.write_text(text.replace('"status": "permitted"', '"status": "permited"', 1))
        health = wait_until(lambda: (h := c.get("/health").json()).get("reload_error") and h, what="the failure")
        assert health["status"] == "ok" and health["policy_hash"] == good
        problems = health["reload_error"]["problems"]
        assert any(p.startswith("policy/codes/T1016.json:") and "permited" in p for p in problems), problems
        line_no = int(problems[0].split(":")[1])
        assert '"permited"' in broken.read_text().splitlines()[line_no - 1]
        decided = c.post("/v1/decide", json=LINE).json()
        assert decided["policy_hash"] == good and decided["outcome"] == "payable"
        metrics = c.get("/metrics").text
        assert "cmap_policy_reload_failed 1.0" in metrics and "cmap_policy_reload_failures_total 1.0" in metrics
        assert 'cmap_policy_reload_problem{problem="policy/codes/T1016.json:' in metrics
        # fixed: the next change loads
        broken.write_text(text)
        _end_t1016(root)
        health = wait_until(lambda: "reload_error" not in (h := c.get("/health").json()) and h, what="the fix")
        assert health["policy_hash"] == load_policy(root).hash != good
        assert "cmap_policy_reload_failed 0.0" in c.get("/metrics").text


def test_health_is_not_ready_until_a_policy_loads(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    root.mkdir()  # an empty folder: no policy yet
    with serve(ServiceConfig(policy=root, access_log=False), wait_ready=False) as server, server.client() as c:
        health = wait_until(lambda: (h := c.get("/health")).json()["status"] == "failed" and h, what="the failure")
        assert health.status_code == 503 and health.json()["reload_error"]["problems"]
        refused = c.post("/v1/decide", json=LINE)
        assert refused.status_code == 503 and refused.json()["type"].endswith("not-ready")
        copy_policy(tmp_path / "later")
        for item in (tmp_path / "later" / "policy").iterdir():
            item.rename(root / item.name)
        wait_until(lambda: c.get("/health").status_code == 200, what="the policy to load")
        assert c.post("/v1/decide", json=LINE).json()["policy_hash"] == load_policy(root).hash

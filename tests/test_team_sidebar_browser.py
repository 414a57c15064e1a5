"""Two people on one team store, seen by one of them in the JupyterLab sidebar (real JupyterLab, real Chromium).

Alice and Bob each have a project folder naming the same team store (the test PostgreSQL for the index, moto's
S3 *emulator* for blobs) and a local folder of their own, as two machines would. Alice's JupyterLab lists Bob's
run beside hers, says who made each, opens his log (from the bucket: nothing of his is on her disk) and
filters to her own runs. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import need_service
from test_sidebar_browser import CHROMIUM, SIDEBAR, VISIBLE, Lab, row, shot, sidebar_page
from test_team_store_e2e import TRAIN, Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_alice_sees_bobs_run_says_who_made_it_opens_his_log_and_filters_to_her_own(
    team_pg: str, team_s3: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    need_service(Path(CHROMIUM).is_file(), f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    blobs, s3 = team_s3
    alice = Person("alice", tmp_path, team_pg, blobs, s3)
    bob = Person("bob", tmp_path, team_pg, blobs, s3)
    (alice.folder / "train.py").write_text(TRAIN.format(offset=0, who="alice"))
    (bob.folder / "train.py").write_text(TRAIN.format(offset=10, who="bob"))
    alice.cli("submit", "train.py")
    bob.cli("submit", "train.py")
    made = {r["created_by"]: r["run_id"] for r in alice.json("runs")}
    assert set(made) == {"alice", "bob"}
    lab = Lab(tmp_path / "lab")
    lab.root.mkdir()
    lab.project = alice.folder
    lab.start(base_env=alice.env)  # the store is the one her launchbay.toml names
    try:
        with sidebar_page(lab) as page:
            page.wait_for_selector(f"{row(made['bob'])} .lb-run-user")
            assert page.inner_text(f"{row(made['bob'])} .lb-run-user") == "bob"
            assert page.inner_text(f"{row(made['alice'])} .lb-run-user") == "alice"
            shot(page, "team-two-users")
            page.click(f"{row(made['bob'])} .lb-run-name")
            view = f'{VISIBLE} .lb-run-view[data-run-id="{made["bob"]}"]'
            page.wait_for_function(
                f"document.querySelector('{view} pre.lb-log')?.textContent.includes('hello from bob')"
            )
            user_filter = f"{SIDEBAR} .lb-filter-user"
            page.select_option(user_filter, "alice")  # "Mine (alice)": the server makes runs as her
            assert page.inner_text(f"{user_filter} option:checked") == "Mine (alice)"
            page.wait_for_function(
                f"[...document.querySelectorAll('{SIDEBAR} .lb-run-row')].map(r => r.dataset.runId).join() === "
                f"'{made['alice']}'"
            )
            shot(page, "team-mine")
    finally:
        lab.stop()

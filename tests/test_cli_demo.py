"""``sora demo`` shows both ways to the video: the chat stream and the task API."""

from __future__ import annotations

import pytest

from tests.test_cli_support import last_json, run

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("endpoint", ["chat", "videos"])
def test_demo_over_each_endpoint(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--speed", "50", "--endpoint", endpoint, "--json")
    assert code == 0, err
    got = last_json(out)
    assert got["status"] == "succeeded" and str(got["task_id"]).startswith("task_")
    assert got["download"]["bytes"] > 1000
    if endpoint == "videos":  # the file of a task is its /content
        assert got["video_url"].endswith(f"/v1/videos/{got['task_id']}/content")
    else:
        assert got["video_url"].endswith(".mp4")


def test_demo_says_which_way_it_went(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--speed", "50", "--endpoint", "videos")
    assert code == 0, err
    assert "through the task API" in out and "saved" in out

"""The page at `/` in a real browser: register, create a project, upload, live progress, boxes over the video."""

import time

import httpx
import pytest

from tests.media import make_moving_box_video

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FPS = 24.0
FRAMES = 72
SEEK_FRAME = 30  # The box is fully inside the picture here (it enters from the left edge at frame 0).
PASSWORD = "Corr3ct-Horse-Battery"

# Pixels of the overlay whose colour is one of the box colours (ground truth, TP, FP): proof of real drawing.
COUNT_BOX_PIXELS = """(canvas) => {
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  const counts = { truth: 0, tp: 0, fp: 0 };
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a < 200) continue;
    if (r > 240 && g > 200 && b < 40) counts.truth += 1;
    else if (r < 40 && g > 180 && b > 60 && b < 110) counts.tp += 1;
    else if (r > 240 && g < 40 && b > 50 && b < 90) counts.fp += 1;
  }
  return counts;
}"""


@pytest.fixture
def webm_video(tmp_path):
    """A WebM/VP8 clip: a container and codec every Chromium plays (OpenCV's MPEG-4 Part 2 is not one)."""
    path = tmp_path / "street cam <1>.webm"
    make_moving_box_video(path, fourcc="VP80", frames=FRAMES, fps=FPS, width=320, height=240)
    return path


def _wait_for(page, predicate: str, arg=None, timeout: int = 10_000) -> None:
    """Poll a JS predicate through CDP evaluation: `page.wait_for_function` builds its predicate with
    `new Function` inside the page, which the page's CSP (no 'unsafe-eval') rightly refuses."""
    if not predicate.lstrip().startswith(("(", "f =>", "() =>")):
        predicate = f"() => ({predicate})"
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(predicate, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        page.wait_for_timeout(100)


def _seek(page, frame: int) -> None:
    # Middle of the frame's display interval, so the presented frame is unambiguous.
    page.eval_on_selector("#player", "(v, t) => { v.pause(); v.currentTime = t; }", (frame + 0.5) / FPS)
    _wait_for(page, "f => document.querySelector('#overlay').dataset.frame === String(f)", arg=frame, timeout=15_000)


def _score_a_session(base: str, token: str, video_id: int, frame: int) -> int:
    """Through the API: one detection on the frame's ground-truth box (TP) and one far from it (FP)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30) as api:
        truth = api.get(f"/videos/{video_id}/ground-truth", params={"page_size": 5000}).json()["results"]
        box = next(b for b in truth if b["frame"] == frame)
        common = {"frame": frame, "timestamp_ms": round(frame * 1000 / FPS), "label": box["label"]}
        rows = [
            {**common, "confidence": 0.9, "x": box["x"], "y": box["y"], "w": box["w"], "h": box["h"]},
            {**common, "confidence": 0.4, "x": 0, "y": 0, "w": 12, "h": 12},
        ]
        session = api.post(f"/videos/{video_id}/test-sessions", json={"model_name": "tiny-yolo <b>"}).json()
        assert api.post(f"/test-sessions/{session['id']}/detections", json=rows).json() == {"inserted": 2}
        assert api.post(f"/test-sessions/{session['id']}/complete").status_code == 202
        for _ in range(120):
            state = api.get(f"/test-sessions/{session['id']}").json()
            if state["status"] in ("completed", "failed"):
                break
            time.sleep(0.5)
        assert (state["status"], state["tp"], state["fp"]) == ("completed", 1, 1), state
        return session["id"]


def test_user_uploads_watches_progress_and_sees_boxes_over_the_video(live_asgi, browser_page, webm_video, artifacts):
    page, base = browser_page, live_asgi
    path = webm_video
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"{msg.text} {msg.location['url']}"))

    # Register through the page; it signs in right after.
    page.goto("/")
    page.click("#auth-toggle")
    page.fill("#auth-email", "ada@example.com")
    page.fill("#auth-username", "ada")
    page.fill("#auth-password", PASSWORD)
    page.click("#auth-submit")
    page.wait_for_selector("#app:not([hidden])")
    assert page.text_content("#whoami") == "ada (free)"

    # Create a project; its name is user text and must arrive as text.
    page.fill("#project-name", "Street <cams>")
    page.click("#project-form button")
    _wait_for(page, "document.querySelector('#project-select').selectedOptions[0]?.text === 'Street <cams> (0)'")
    page.wait_for_selector("#live:text('live')")

    # Upload with the progress bar; the list then follows processing over the WebSocket only (no polling).
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-submit")
    page.wait_for_selector("#upload-status:text('processing')")
    assert page.get_attribute("#upload-progress", "value") == "100"
    assert page.eval_on_selector("#project-select", "s => s.selectedOptions[0].text") == "Street <cams> (1)"
    item = page.locator("li.video").first
    item.locator(".status[data-status='completed']").wait_for(timeout=120_000)
    assert item.locator(".name").text_content() == path.name
    assert item.locator(".status").text_content() == "completed"
    assert "320\u00d7240" in item.locator(".detail").text_content()  # "320x240" with a multiplication sign
    _wait_for(page, "document.querySelector('li.video .thumb').naturalWidth === 320")
    assert page.locator("#videos > li").count() == 1

    # Play: boxes are drawn in sync with the presented frame.
    item.locator(".play").click()
    _wait_for(page, "Number(document.querySelector('#overlay').dataset.truthFrames) > 0", timeout=30_000)
    _wait_for(page, "document.querySelector('#player').readyState >= 2", timeout=30_000)
    page.eval_on_selector("#player", "v => v.play()")
    _wait_for(page, "document.querySelector('#player').currentTime > 0.5", timeout=30_000)
    _seek(page, SEEK_FRAME)
    overlay = page.locator("#overlay")
    assert overlay.get_attribute("data-truth") == "1"
    assert page.locator("#overlay").evaluate(COUNT_BOX_PIXELS)["truth"] > 100
    _seek(page, SEEK_FRAME + 12)
    assert overlay.get_attribute("data-truth") == "1"

    # A scored test session's detections, coloured TP and FP, over the same frame.
    video_id = int(item.get_attribute("data-video-id"))
    token = page.evaluate("sessionStorage.getItem('fw.access')")
    session_id = _score_a_session(base, token, video_id, SEEK_FRAME)
    item.locator(".play").click()
    option = page.locator(f"#session-select option[value='{session_id}']")
    option.wait_for(state="attached")
    assert option.text_content().startswith(f"#{session_id} tiny-yolo <b> (completed")
    page.select_option("#session-select", str(session_id))
    _wait_for(page, "document.querySelector('#player').readyState >= 2", timeout=30_000)
    _seek(page, SEEK_FRAME)
    _wait_for(page, "document.querySelector('#overlay').dataset.fp === '1'")
    assert (overlay.get_attribute("data-tp"), overlay.get_attribute("data-fp")) == ("1", "1")
    pixels = overlay.evaluate(COUNT_BOX_PIXELS)
    assert pixels["tp"] > 50 and pixels["fp"] > 20, pixels
    page.screenshot(path=str(artifacts / "player.png"), full_page=True)  # boxes over the paused video

    # A reload with a spoilt access token: the page refreshes it once (rotation) and carries on, socket too.
    refresh = page.evaluate("sessionStorage.getItem('fw.refresh')")
    page.evaluate("sessionStorage.setItem('fw.access', 'not-a-token')")
    page.reload()
    page.wait_for_selector("#live:text('live')")
    assert page.text_content("#whoami") == "ada (free)"
    assert page.evaluate("sessionStorage.getItem('fw.refresh')") != refresh
    token = page.evaluate("sessionStorage.getItem('fw.access')")
    me = httpx.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "ada"
    rejected = [p for p in problems if "401" in p and p.endswith("/api/v1/auth/me")]
    assert len(rejected) == 1, problems
    problems.remove(rejected[0])

    # The dashboard shows when its endpoint answers, and stays out of the way when it does not.
    stats = httpx.get(f"{base}/api/v1/dashboard/stats", headers={"Authorization": f"Bearer {token}"})
    if stats.status_code == 200:
        page.wait_for_selector("#dashboard:not([hidden])")
        assert page.get_attribute("#dash-chart", "data-bars") == "4"
    else:
        assert stats.status_code == 404
        assert page.locator("#dashboard").is_hidden()
        # Asked once per page load, a 404 is logged by the browser (not by the page), never retried.
        missing = [p for p in problems if p.endswith("/api/v1/dashboard/stats")]
        assert len(missing) == 2, problems
        for entry in missing:
            problems.remove(entry)

    page.screenshot(path=str(artifacts / "page.png"), full_page=True)
    assert page.locator("script:not([src])").count() == 0  # CSP-friendly: no inline script.
    assert problems == []

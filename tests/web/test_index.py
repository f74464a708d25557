"""The page at `/` without a browser: served without a query, CSP-friendly markup, its static files present."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

ASSETS = ("web/app.js", "web/player.js", "web/app.css", "web/favicon.svg")


@pytest.mark.django_db
def test_page_is_served_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"


@pytest.mark.django_db
def test_page_has_no_inline_script_style_or_handler(client):
    html = client.get("/").content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == [
        '<script src="/static/web/player.js" defer>',
        '<script src="/static/web/app.js" defer>',
    ]
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # Nothing from another origin.


@pytest.mark.parametrize("asset", ASSETS)
def test_static_assets_are_found(asset):
    assert finders.find(asset) is not None


def test_scripts_never_write_html_from_data():
    for asset in ("web/app.js", "web/player.js"):
        source = Path(finders.find(asset)).read_text(encoding="utf-8")
        assert "innerHTML" not in source
        assert "insertAdjacentHTML" not in source
        assert "document.write" not in source

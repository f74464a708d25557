"""Hot reads return bodies built by their selectors (no Ninja re-validation): they must still match the schemas."""

import pytest
from django.core import signing

from tests.videos.conftest import upload
from videos import storage
from videos.models import GroundTruthBox
from videos.schemas import GroundTruthPage, VideoOut, VideoPage

pytestmark = pytest.mark.django_db


def _video(owner_api, project, sample_video):
    response = upload(owner_api, project["id"], sample_video[0])
    assert response.status_code == 202
    return response.json()


def test_video_list_and_detail_bodies_are_what_the_schemas_would_render(owner_api, project, sample_video):
    video = _video(owner_api, project, sample_video)
    page = owner_api.get(f"/api/v1/projects/{project['id']}/videos").json()
    assert VideoPage.model_validate(page).model_dump(mode="json") == page
    detail = owner_api.get(f"/api/v1/videos/{video['id']}").json()
    assert VideoOut.model_validate(detail).model_dump(mode="json") == detail


def test_ground_truth_page_body_is_what_the_schema_would_render(owner_api, project, sample_video):
    video = _video(owner_api, project, sample_video)
    GroundTruthBox.objects.bulk_create(
        GroundTruthBox(video_id=video["id"], frame=f, timestamp_ms=40 * f, label="motion", x=1, y=2, w=3, h=4)
        for f in range(3)
    )
    page = owner_api.get(f"/api/v1/videos/{video['id']}/ground-truth").json()
    assert len(page["results"]) == 3
    assert GroundTruthPage.model_validate(page).model_dump(mode="json") == page


def test_media_signer_signs_exactly_as_djangos_timestamp_signer(monkeypatch):
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: "fixed")
    monkeypatch.setattr(storage._MediaSigner, "timestamp", lambda self: "fixed")
    stock = signing.TimestampSigner(salt=storage._SALT).sign("thumbnail:7")
    assert storage._signer("any-secret-key-value").sign("thumbnail:7") == stock
    monkeypatch.undo()
    sig = storage.sign_media(7, "thumbnail")
    assert storage.check_media_signature(7, "thumbnail", sig)
    assert not storage.check_media_signature(8, "thumbnail", sig)
    assert not storage.check_media_signature(7, "file", sig)


def test_signed_urls_are_stable_within_the_hour(monkeypatch):
    """Every read in one hour mints the same URL: bodies keep their ETag, browsers keep cached thumbnails."""
    hour = 1_800_000_000 // 3600 * 3600
    monkeypatch.setattr(storage.time, "time", lambda: hour + 5)
    first = storage.sign_media(7, "thumbnail")
    monkeypatch.setattr(storage.time, "time", lambda: hour + 3599)
    assert storage.sign_media(7, "thumbnail") == first
    monkeypatch.setattr(storage.time, "time", lambda: hour + 3600)
    assert storage.sign_media(7, "thumbnail") != first

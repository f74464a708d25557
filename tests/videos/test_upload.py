"""Upload validation: 202 queued, and 400/413/415 leave no file, no temporary file and no row."""

import pytest

from tests.videos.conftest import upload
from videos.models import ProcessingJob, Video

pytestmark = pytest.mark.django_db


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def _nothing_left(media_root, settings):
    assert Video.objects.count() == 0
    assert ProcessingJob.objects.count() == 0
    assert _files(media_root) == []
    assert _files(type(media_root)(settings.FILE_UPLOAD_TEMP_DIR)) == []


def test_upload_answers_202_queued_and_stores_under_a_generated_name(owner_api, project, sample_video, media_root):
    path, _ = sample_video
    response = upload(owner_api, project["id"], path)
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["stage"], body["progress"]) == ("queued", "queued", 0)
    import hashlib

    assert body["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    [stored] = _files(media_root)
    assert stored.read_bytes() == path.read_bytes()
    assert stored.name != path.name and stored.suffix == ".mp4"
    job = ProcessingJob.objects.get(video_id=body["id"])
    assert (job.kind, job.state) == ("process", "pending")


def test_client_path_in_filename_cannot_escape_media_root(owner_api, project, sample_video, media_root):
    path, _ = sample_video
    with open(path, "rb") as fh:
        from django.core.files.uploadedfile import SimpleUploadedFile

        evil = SimpleUploadedFile("../../../etc/evil\u202e4pm.mp4", fh.read(), content_type="video/mp4")
    response = owner_api.post(f"/api/v1/projects/{project['id']}/videos", {"file": evil}, format="multipart")
    assert response.status_code == 202
    assert "/" not in response.json()["original_name"] and "\u202e" not in response.json()["original_name"]
    assert all(media_root in p.parents for p in _files(media_root))


def test_over_the_limit_is_413_with_nothing_left(owner_api, project, sample_video, media_root, settings):
    path, _ = sample_video
    settings.VIDEO_MAX_BYTES = path.stat().st_size - 1
    response = upload(owner_api, project["id"], path)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    _nothing_left(media_root, settings)


def test_exactly_the_limit_is_accepted(owner_api, project, sample_video, settings):
    path, _ = sample_video
    settings.VIDEO_MAX_BYTES = path.stat().st_size
    assert upload(owner_api, project["id"], path).status_code == 202


@pytest.mark.parametrize(
    "payload",
    [
        b"PK\x03\x04 a zip file" * 10,
        b"#EXTM3U\n#EXTINF:10,\n/etc/passwd\n",
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
        b"\x89PNG\r\n\x1a\n" + b"0" * 100,
    ],
)
def test_non_video_payloads_are_415_with_nothing_left(owner_api, project, media_root, settings, tmp_path, payload):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(payload)
    response = upload(owner_api, project["id"], fake)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    _nothing_left(media_root, settings)


def test_empty_file_is_400(owner_api, project, media_root, settings, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    response = upload(owner_api, project["id"], empty)
    assert response.status_code == 400
    assert response.json()["details"] == {"field": "file"}
    _nothing_left(media_root, settings)


def test_missing_file_field_is_400(owner_api, project, media_root, settings):
    response = owner_api.post(f"/api/v1/projects/{project['id']}/videos", {"other": "x"}, format="multipart")
    assert response.status_code == 400
    _nothing_left(media_root, settings)


def test_upload_into_a_foreign_project_is_404(project, sample_video, media_root, settings):
    from rest_framework.test import APIClient

    from tests.conftest import bearer
    from tests.factories import UserFactory

    stranger = APIClient()
    stranger.credentials(**bearer(UserFactory()))
    assert upload(stranger, project["id"], sample_video[0]).status_code == 404
    _nothing_left(media_root, settings)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00matroska", "video/x-matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video/x-msvideo"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"  #EXTM3U\n", None),
        (b"GIF89a", None),
    ],
)
def test_sniffing_by_magic_bytes(head, expected):
    from videos.storage import sniff_video_type

    assert sniff_video_type(head) == expected


def test_uploads_have_their_own_rate_limit_scope(owner_api, project, sample_video, settings):
    settings.RATE_LIMITS = "upload=1/m,general=100/m"
    assert upload(owner_api, project["id"], sample_video[0]).status_code == 202
    refused = upload(owner_api, project["id"], sample_video[0])
    assert refused.status_code == 429
    assert refused.json()["details"]["scope"] == "upload"
    assert Video.objects.count() == 1
    assert owner_api.get("/api/v1/projects").status_code == 200  # other requests use the general budget


def test_multipart_body_cut_before_its_closing_boundary_is_400_with_nothing_left(
    owner_api, project, media_root, settings
):
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    body = head + b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 5000  # no "\r\n--b--": the stream just ends
    response = owner_api.generic(
        "POST", f"/api/v1/projects/{project['id']}/videos", body, content_type="multipart/form-data; boundary=b"
    )
    assert response.status_code == 400
    assert response.json()["details"] == {"field": "file"}
    _nothing_left(media_root, settings)

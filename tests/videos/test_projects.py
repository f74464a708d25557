"""Projects: create (409 on duplicates), list with video_count in one query, detail, PATCH, DELETE; foreign → 404."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.factories import UserFactory
from videos.models import Project, Video

pytestmark = pytest.mark.django_db


def _video(project_id: int, **fields) -> Video:
    defaults = {
        "original_name": "a.mp4",
        "file": "videos/x.mp4",
        "size_bytes": 1,
        "content_type": "video/mp4",
        "sha256": "0" * 64,
    }
    return Video.objects.create(project_id=project_id, **(defaults | fields))


def test_create_project_returns_201_with_shape(owner_api):
    response = owner_api.post("/api/v1/projects", {"name": " Cams ", "description": "d"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "description", "video_count", "created_at", "updated_at"}
    assert (body["name"], body["description"], body["video_count"]) == ("Cams", "d", 0)


def test_duplicate_project_name_for_owner_is_409(owner_api, project):
    response = owner_api.post("/api/v1/projects", {"name": "Cams"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert response.json()["details"] == {"field": "name"}
    assert Project.objects.count() == 1


def test_same_name_for_another_owner_is_fine(owner_api, project):
    other = APIClient()
    other.credentials(**bearer(UserFactory()))
    assert other.post("/api/v1/projects", {"name": "Cams"}, format="json").status_code == 201


@pytest.mark.parametrize(
    "payload", [{}, {"name": ""}, {"name": 5}, {"name": "x" * 201}, {"name": "ok", "description": []}]
)
def test_invalid_project_payload_is_422(owner_api, payload):
    response = owner_api.post("/api/v1/projects", payload, format="json")
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert Project.objects.count() == 0


def test_projects_require_authentication(api):
    response = api.get("/api/v1/projects")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_foreign_project_is_404_everywhere(project):
    stranger = APIClient()
    stranger.credentials(**bearer(UserFactory()))
    pid = project["id"]
    assert stranger.get(f"/api/v1/projects/{pid}").status_code == 404
    assert stranger.patch(f"/api/v1/projects/{pid}", {"name": "x"}, format="json").status_code == 404
    assert stranger.delete(f"/api/v1/projects/{pid}").status_code == 404
    assert stranger.get(f"/api/v1/projects/{pid}/videos").status_code == 404
    assert Project.objects.filter(pk=pid).exists()


def test_staff_sees_every_project(project):
    staff = APIClient()
    staff.credentials(**bearer(UserFactory(is_staff=True)))
    assert staff.get(f"/api/v1/projects/{project['id']}").status_code == 200


def test_list_counts_videos_with_a_fixed_number_of_queries(owner, owner_api, django_assert_num_queries):
    ids = [Project.objects.create(owner=owner, name=f"p{i}").pk for i in range(12)]
    for i, pid in enumerate(ids):
        for _ in range(i % 3):
            _video(pid)
    with django_assert_num_queries(1):
        small = owner_api.get("/api/v1/projects?page_size=3")
    with django_assert_num_queries(1):
        large = owner_api.get("/api/v1/projects?page_size=100")
    assert len(small.json()["results"]) == 3
    counts = {p["id"]: p["video_count"] for p in large.json()["results"]}
    assert counts == {pid: i % 3 for i, pid in enumerate(ids)}
    assert [p["id"] for p in large.json()["results"]] == sorted(ids, reverse=True)


def test_pages_are_stable_while_projects_are_added(owner, owner_api):
    before = [Project.objects.create(owner=owner, name=f"p{i}").pk for i in range(7)]
    seen, url = [], "/api/v1/projects?page_size=3"
    while url:
        page = owner_api.get(url).json()
        seen += [p["id"] for p in page["results"]]
        Project.objects.create(owner=owner, name=f"new{len(seen)}")
        url = page["next"]
    assert [pid for pid in seen if pid in before] == sorted(before, reverse=True)
    assert len(seen) == len(set(seen))


def test_patch_project(owner_api, project):
    response = owner_api.patch(f"/api/v1/projects/{project['id']}", {"description": "new"}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("Cams", "new")


def test_patch_to_a_taken_name_is_409(owner_api, project):
    owner_api.post("/api/v1/projects", {"name": "Other"}, format="json")
    response = owner_api.patch(f"/api/v1/projects/{project['id']}", {"name": "Other"}, format="json")
    assert response.status_code == 409
    assert Project.objects.get(pk=project["id"]).name == "Cams"


def test_delete_project_removes_rows_and_files(owner_api, project, media_root, django_capture_on_commit_callbacks):
    stored = media_root / "videos" / "keep.mp4"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"data")
    thumb = media_root / "thumbnails" / "t.jpg"
    thumb.parent.mkdir(parents=True)
    thumb.write_bytes(b"jpg")
    video = _video(project["id"], file="videos/keep.mp4", thumbnail="thumbnails/t.jpg")
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.delete(f"/api/v1/projects/{project['id']}")
    assert response.status_code == 204
    assert not Project.objects.filter(pk=project["id"]).exists()
    assert not Video.objects.filter(pk=video.pk).exists()
    assert not stored.exists()
    assert not thumb.exists()

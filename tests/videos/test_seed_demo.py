"""seed_demo: COPY-filled benchmark data in the stated proportions; refuses a database that already has data."""

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from videos.models import DetectionEvent, GroundTruthBox, Project, TestSession, Video


@pytest.mark.django_db
def test_seed_demo_fills_the_scaled_counts_and_refuses_to_run_twice(capsys):
    call_command("seed_demo", scale=0.002, password="Seed-Passw0rd!")
    bench = User.objects.get(username="bench")
    admin = User.objects.get(username="bench-admin")
    assert bench.check_password("Seed-Passw0rd!") and not bench.is_staff and admin.is_staff
    assert User.objects.count() == 20
    assert Project.objects.filter(owner=bench).count() == Project.objects.count() == 1
    assert Video.objects.filter(project__owner=bench).count() == 20
    assert Video.objects.filter(ground_truth_generated=True).count() == 2
    assert GroundTruthBox.objects.count() == 2000
    assert TestSession.objects.count() == 4 and DetectionEvent.objects.count() == 1000
    video_of = dict(TestSession.objects.values_list("id", "video_id"))
    assert all(video_of[s] == v for s, v in DetectionEvent.objects.values_list("test_session_id", "video_id"))
    assert "username=bench password=Seed-Passw0rd!" in capsys.readouterr().out
    # Sequences moved past the explicit ids: ordinary inserts still work.
    assert Project.objects.create(owner=bench, name="after seeding").pk > Project.objects.order_by("pk").first().pk
    with pytest.raises(CommandError, match="only fills an empty one"):
        call_command("seed_demo", scale=0.002)

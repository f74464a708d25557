from operator import attrgetter
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from config import cache
from videos import services
from videos.models import DetectionEvent, GroundTruthBox, ProcessingJob, Project, TestSession, Video
from videos.storage import sign_media


class InvalidatingAdmin(admin.ModelAdmin):
    """Edits and deletes in the admin invalidate the cached reads of the projects they touch, after commit, as the
    write services do (the analytics counters follow by trigger either way). Where a delete service exists (it
    also removes stored files and locks the sessions being scored), admin deletes go through it."""

    project_path = ""  # the ORM path from this model to its Project ("" for Project itself)
    delete_with: Any = None  # staticmethod(obj -> None): the write service that deletes one object

    def _project_changed(self, obj: Any) -> None:
        project = attrgetter(self.project_path.replace("__", "."))(obj) if self.project_path else obj
        cache.project_changed(project.pk, project.owner_id)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        self._project_changed(obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        if self.delete_with is not None:
            self.delete_with(obj)
            return
        self._project_changed(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if self.delete_with is not None:
            for obj in queryset:
                self.delete_with(obj)
            return
        prefix = f"{self.project_path}__" if self.project_path else ""
        projects = set(queryset.values_list(f"{prefix}id", f"{prefix}owner_id"))
        super().delete_queryset(request, queryset)
        for project_id, owner_id in projects:
            cache.project_changed(project_id, owner_id)


@admin.register(Project)
class ProjectAdmin(InvalidatingAdmin):
    delete_with = staticmethod(lambda project: services.project_delete(project=project))
    list_display = ("name", "owner", "created_at")
    search_fields = ("name", "owner__username", "owner__email")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    show_full_result_count = False


class ProcessingJobInline(admin.TabularInline):
    model = ProcessingJob
    fk_name = "video"
    extra = 0
    can_delete = False
    fields = ("kind", "state", "priority", "attempts", "last_error", "created_at", "heartbeat_at", "finished_at")
    readonly_fields = fields
    ordering = ("-created_at",)


@admin.action(description="Reprocess selected videos")
def reprocess(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Video]) -> None:
    for video in queryset:
        services.video_reprocess(video=video)
    modeladmin.message_user(request, f"Queued {queryset.count()} video(s).", messages.SUCCESS)


@admin.register(Video)
class VideoAdmin(InvalidatingAdmin):
    project_path = "project"
    delete_with = staticmethod(lambda video: services.video_delete(video=video))
    list_display = ("preview", "original_name", "project", "status", "progress", "ground_truth_generated", "created_at")
    list_filter = ("status", "ground_truth_generated", "content_type")
    search_fields = ("original_name", "sha256", "project__name")
    list_select_related = ("project",)
    autocomplete_fields = ("project", "uploaded_by")
    readonly_fields = (
        "preview",
        "file",
        "size_bytes",
        "content_type",
        "sha256",
        "status",
        "stage",
        "progress",
        "error",
        "duration_s",
        "fps",
        "width",
        "height",
        "frame_count",
        "codec",
        "thumbnail",
        "ground_truth_generated",
        "created_at",
        "updated_at",
    )
    inlines = [ProcessingJobInline]
    actions = [reprocess]
    show_full_result_count = False

    @admin.display(description="thumbnail")
    def preview(self, video: Video) -> str:
        if not video.thumbnail:
            return "—"
        url = f"/api/v1/videos/{video.pk}/thumbnail?sig={sign_media(video.pk, 'thumbnail')}"
        return format_html('<img src="{}" style="height:48px">', url)


@admin.register(ProcessingJob)
class ProcessingJobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "state", "video", "priority", "attempts", "created_at", "heartbeat_at")
    list_filter = ("kind", "state")
    list_select_related = ("video",)
    autocomplete_fields = ("video", "test_session")
    readonly_fields = ("created_at", "started_at", "finished_at", "heartbeat_at", "attempts", "last_error")
    show_full_result_count = False


@admin.register(TestSession)
class TestSessionAdmin(InvalidatingAdmin):
    project_path = "video__project"
    list_display = ("id", "model_name", "video", "status", "precision", "recall", "f1", "created_at")
    list_filter = ("status", "model_name")
    search_fields = ("model_name", "video__original_name")
    list_select_related = ("video",)
    autocomplete_fields = ("video", "created_by")
    readonly_fields = ("tp", "fp", "fn", "precision", "recall", "f1", "mean_iou", "completed_at")
    show_full_result_count = False


@admin.register(GroundTruthBox)
class GroundTruthBoxAdmin(InvalidatingAdmin):
    project_path = "video__project"
    list_display = ("id", "video", "frame", "label", "x", "y", "w", "h")
    list_select_related = ("video",)
    raw_id_fields = ("video",)
    show_full_result_count = False


@admin.register(DetectionEvent)
class DetectionEventAdmin(InvalidatingAdmin):
    project_path = "video__project"
    list_display = ("id", "test_session", "frame", "label", "confidence", "result__validation_result", "result__iou")
    list_filter = ("result__validation_result",)
    list_select_related = ("test_session", "result")
    raw_id_fields = ("test_session", "video")
    show_full_result_count = False

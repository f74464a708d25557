"""Upload streaming (hash, sniff, size limit while the body is read), stored names, and signed media URLs."""

import hashlib
import uuid
from typing import Any

from django.core import signing
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.utils import timezone

from config.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

SIGNED_URL_TTL_S = 6 * 3600
SNIFF_BYTES = 64

# Playlists and concat scripts make FFmpeg open other files: refused even when renamed.
_PLAYLIST_PREFIXES = (b"#EXTM3U", b"ffconcat", b"#EXT-X-", b"[playlist]")


def sniff_video_type(head: bytes) -> str | None:
    """The container's MIME type from its magic bytes (MP4/MOV, WebM/MKV, AVI), else None."""
    if head.lstrip().startswith(_PLAYLIST_PREFIXES):
        return None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:SNIFF_BYTES] else "video/x-matroska"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    return None


EXTENSIONS = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
}


def stored_name(content_type: str) -> str:
    """A generated storage name; the client's filename never reaches the file system."""
    return f"videos/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{EXTENSIONS[content_type]}"


def clean_original_name(name: str) -> str:
    """The client's name as display text only: path parts, control and bidi characters removed, ≤ 255 chars."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    bidi = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in bidi).strip()
    return (cleaned or "video")[:255]


class VideoUpload(TemporaryUploadedFile):
    """The streamed upload: a temporary file plus what was learned while writing it."""

    sha256: str
    sniffed_type: str | None


class VideoUploadHandler(FileUploadHandler):
    """Streams the `file` part to a temporary file, hashing and sniffing as it goes; enforces the size limit.

    Django's parser feeds this handler chunk by chunk, so the body is never whole in memory, and the
    limit counts bytes actually received: a missing or lying Content-Length cannot get past it.
    """

    chunk_size = 1024 * 1024

    def __init__(self, request: Any = None, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.upload: VideoUpload | None = None
        self.received = 0
        self.head = b""
        self.hasher = hashlib.sha256()
        self.active = False

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        # Only the first `file` part is stored; any other file part is read and dropped.
        self.active = field_name == "file" and self.upload is None
        if self.active:
            self.upload = VideoUpload(file_name, "application/octet-stream", 0, None)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if not self.active or self.upload is None:
            return None
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            raise PayloadTooLarge(
                f"The video exceeds the {self.max_bytes} byte limit.", details={"max_bytes": self.max_bytes}
            )
        if len(self.head) < SNIFF_BYTES:
            self.head += raw_data[: SNIFF_BYTES - len(self.head)]
            if len(self.head) >= 12 and sniff_video_type(self.head) is None:
                raise UnsupportedMediaType("The file is not an MP4/MOV, WebM/MKV or AVI video.")
        self.hasher.update(raw_data)
        self.upload.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> VideoUpload | None:
        if not self.active or self.upload is None:
            return None
        self.active = False
        self.upload.seek(0)
        self.upload.size = file_size
        self.upload.sha256 = self.hasher.hexdigest()
        self.upload.sniffed_type = sniff_video_type(self.head)
        return self.upload

    def discard(self) -> None:
        if self.upload is not None:
            self.upload.close()  # Deletes the temporary file.


def parse_video_upload(request: Any, *, max_bytes: int) -> VideoUpload:
    """Parse a multipart request's `file` part through VideoUploadHandler (sync: run it off the event loop)."""
    handler = VideoUploadHandler(request, max_bytes=max_bytes)
    request.upload_handlers = [handler]
    try:
        request.FILES  # noqa: B018 - triggers the streaming parse
    except Exception:
        handler.discard()
        raise
    if handler.upload is None or handler.received == 0:
        handler.discard()
        raise BadRequest("Send the video as a non-empty multipart field named 'file'.", details={"field": "file"})
    if handler.upload.sniffed_type is None:
        handler.discard()
        raise UnsupportedMediaType("The file is not an MP4/MOV, WebM/MKV or AVI video.")
    return handler.upload


# --- Signed URLs ----------------------------------------------------------------
_SALT = "framewise.media"


def sign_media(video_id: int, kind: str) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(f"{kind}:{video_id}").split(":", 2)[-1]


def check_media_signature(video_id: int, kind: str, sig: str) -> bool:
    """True when `sig` was made by sign_media for this video and kind and has not expired."""
    try:
        signing.TimestampSigner(salt=_SALT).unsign(f"{kind}:{video_id}:{sig}", max_age=SIGNED_URL_TTL_S)
    except signing.BadSignature:
        return False
    return True

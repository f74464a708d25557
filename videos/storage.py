"""Upload streaming (hash, sniff, size limit while the body is read), stored names, and signed media URLs."""

import functools
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.utils import timezone
from django.utils.encoding import force_bytes

from config.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

SIGNED_URL_TTL_S = 6 * 3600
# Signatures carry the start of their hour, not the second: every read within an hour mints the same URLs, so
# list and detail bodies keep their ETag (304) and browsers keep cached thumbnails. A URL lives 5 to 6 h.
SIGNED_URL_STEP_S = 3600
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
        # Object stores keep this as the object's Content-Type, which presigned downloads are served with.
        self.upload.content_type = self.upload.sniffed_type or "application/octet-stream"
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
    if not hasattr(handler.upload, "sha256"):
        # Django drops a part whose closing boundary never came (a body cut short by a lying Content-Length):
        # file_complete() never ran, so this is a malformed body, not a video.
        handler.discard()
        raise BadRequest("The multipart body ended before the file part did.", details={"field": "file"})
    if handler.upload.sniffed_type is None:
        handler.discard()
        raise UnsupportedMediaType("The file is not an MP4/MOV, WebM/MKV or AVI video.")
    return handler.upload


# --- Signed URLs ----------------------------------------------------------------
_SALT = "framewise.media"


class _MediaSigner(signing.TimestampSigner):
    """Django's TimestampSigner (same signature format) with its HMAC key derived once instead of on every
    call (a list page signs two URLs per video: key derivation was most of video_to_dict's cost) and an
    hour-granular timestamp (SIGNED_URL_STEP_S)."""

    def __init__(self) -> None:
        super().__init__(salt=_SALT)
        key = hashlib.sha256(force_bytes(self.salt + "signer") + force_bytes(self.key)).digest()
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    _step, _stamp = -1, ""

    def timestamp(self) -> str:
        step = int(time.time()) // SIGNED_URL_STEP_S
        if step != self._step:
            self._step, self._stamp = step, signing.b62_encode(step * SIGNED_URL_STEP_S)
        return self._stamp

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        if key is not None and key != self.key:  # fallback keys (SECRET_KEY_FALLBACKS) take the stock path
            return super().signature(value, key)
        mac = self._mac.copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str) -> _MediaSigner:
    return _MediaSigner()


# A signature only changes when its hour-granular timestamp does, so one per (video, kind) per step is enough:
# list pages re-sign the same videos on every request. Cleared at each new step; bounded.
_memo: dict[tuple[str, int, str], str] = {}
_memo_step: list[str] = [""]
_MEMO_MAX = 200_000


def media_signer() -> Callable[[int, str], str]:
    """sign_media for many videos at once (a list page): the key, signer and timestamp are read once."""
    secret = settings.SECRET_KEY
    signer = _signer(secret)
    stamp = signer.timestamp()
    if _memo_step[0] != stamp:
        _memo.clear()
        _memo_step[0] = stamp

    def sign(video_id: int, kind: str) -> str:
        key = (secret, video_id, kind)
        sig = _memo.get(key)
        if sig is None:
            sig = f"{stamp}:{signer.signature(f'{kind}:{video_id}:{stamp}')}"
            if len(_memo) >= _MEMO_MAX:
                _memo.clear()
            _memo[key] = sig
        return sig

    return sign


def sign_media(video_id: int, kind: str) -> str:
    """`<timestamp>:<signature>` of "kind:video_id", exactly TimestampSigner.sign's tail."""
    return media_signer()(video_id, kind)


def check_media_signature(video_id: int, kind: str, sig: str) -> bool:
    """True when `sig` was made by sign_media for this video and kind and has not expired."""
    try:
        _signer(settings.SECRET_KEY).unsign(f"{kind}:{video_id}:{sig}", max_age=SIGNED_URL_TTL_S)
    except signing.BadSignature:
        return False
    return True

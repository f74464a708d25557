"""Benchmark uploads to S3: web-server peak RSS growth for an N MiB upload stored in a bucket of moto's server.

uvicorn serves ``config.asgi:application`` in production mode (PostgreSQL + Redis) with media on S3
(``AWS_STORAGE_BUCKET_NAME`` + ``AWS_S3_ENDPOINT_URL`` pointing at ``python -m moto.server`` on 127.0.0.1).
The client streams a multipart body; each upload must answer 202 with the right size and SHA-256 and leave one
object of that size in the bucket; ``GET /videos/{id}/file`` must answer 302 to a presigned URL whose Range
answer matches. Writes bench/results/s3.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench_upload import MIB, WORK_DIR, create_account_and_project, ensure_file, post_multipart, sha256_of
from common import BIN, ROOT, RssSampler, ServerProcess, prepare_database

RESULTS = ROOT / "bench" / "results" / "s3.json"
BUCKET = "framewise-bench"
KEYS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_S3_REGION_NAME": "us-east-1"}


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        **KEYS,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "EMBEDDED_WORKER": "0",
        "RATE_LIMIT_ENABLED": "0",
        "VIDEO_MAX_BYTES": str(1 << 40),
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{args.moto_port}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }


def main() -> None:
    import boto3
    import httpx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=8775)
    parser.add_argument("--moto-port", type=int, default=8776)
    parser.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/fw_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()

    path, size = ensure_file(args.mb), args.mb * MIB
    digest, data_head = sha256_of(path), path.read_bytes()[:64]
    env = server_env(args)
    prepare_database(urlsplit(args.database_url).path.lstrip("/"), env)
    moto = ServerProcess(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(args.moto_port)],
        args.moto_port,
        env,
        WORK_DIR / "moto.log",
        "moto",
    )
    server = ServerProcess(
        [str(BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1", "--port", str(args.port)],
        args.port,
        env,
        WORK_DIR / "server-s3.log",
        "uvicorn",
    )
    runs: list[dict[str, Any]] = []
    warmup_growth = 0.0
    try:
        moto.wait_ready(None)
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_S3_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto accepts any key
        )
        s3.create_bucket(Bucket=BUCKET)
        server.wait_ready("/health/live")
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=300) as client:
            url = f"/api/v1/projects/{create_account_and_project(client)}/videos"
            # Untimed 4 MiB warm-up: the first use loads boto3's service models (a one-off cost, reported).
            with RssSampler(server.proc.pid) as sampler:
                r = post_multipart(client, url, path, 4 * MIB)
            assert r.status_code == 202, r.text
            assert client.delete(f"/api/v1/videos/{r.json()['id']}").status_code == 204
            warmup_growth = sampler.summary()["peak_growth_mb"]
            print(f"  warm-up 4 MiB: peak RSS +{warmup_growth:.1f} MB (first boto3 use)", flush=True)
            for i in range(args.repeats):
                time.sleep(0.2)
                with RssSampler(server.proc.pid) as sampler:
                    started = time.perf_counter()
                    r = post_multipart(client, url, path)
                    seconds = time.perf_counter() - started
                assert r.status_code == 202, r.text
                video = r.json()
                assert (video["size_bytes"], video["sha256"]) == (size, digest), video
                [obj] = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
                assert obj["Size"] == size, obj
                redirect = client.get(video["file_url"])
                assert redirect.status_code == 302, redirect.text
                part = httpx.get(redirect.headers["location"], headers={"Range": "bytes=0-63"})
                assert (part.status_code, part.content) == (206, data_head)
                assert client.delete(f"/api/v1/videos/{video['id']}").status_code == 204
                assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
                rss = sampler.summary()
                runs.append({"seconds": round(seconds, 3), "mib_per_s": round(args.mb / seconds, 1), **rss})
                print(
                    f"  #{i + 1} {args.mb / seconds:7.1f} MiB/s  peak RSS +{rss['peak_growth_mb']:.1f} MB "
                    f"(baseline {rss['baseline_mb']:.1f} MB)",
                    flush=True,
                )
    finally:
        server.stop()
        moto.stop()
    growth = [r["peak_growth_mb"] for r in runs]
    result = {
        "benchmark": "streamed multipart upload stored on S3 (moto server): uvicorn peak RSS growth",
        "upload_mib": args.mb,
        "warmup_peak_rss_growth_mb": warmup_growth,
        "peak_rss_growth_mb_max": max(growth),
        "peak_rss_growth_mb_median": statistics.median(growth),
        "mib_per_s_median": statistics.median(r["mib_per_s"] for r in runs),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "runs": runs,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.mb} MiB to S3: peak RSS growth max {max(growth):.1f} MB, median {statistics.median(growth):.1f} MB,"
        f" {result['mib_per_s_median']:.1f} MiB/s -> {RESULTS}"
    )


if __name__ == "__main__":
    main()

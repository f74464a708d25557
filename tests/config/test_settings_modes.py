"""The running mode follows from the environment; production settings pass `check --deploy`."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
    "'engine': s.DATABASES['default']['ENGINE'], 'pool': 'pool' in s.DATABASES['default'].get('OPTIONS', {}),"
    "'init': s.DATABASES['default'].get('OPTIONS', {}).get('init_command', ''),"
    "'cache': s.CACHES['default']['BACKEND'], 'layer': s.CHANNEL_LAYERS['default']['BACKEND'],"
    "'broker': s.DRAMATIQ_BROKER['BROKER'], 'worker': s.EMBEDDED_WORKER}))"
)
_MODE_VARS = ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "EMBEDDED_WORKER")


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in _MODE_VARS}
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def _mode(**env: str) -> dict:
    result = _run(["-c", _PROBE], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_mode_needs_no_services():
    assert _mode() == {
        "engine": "django.db.backends.sqlite3",
        "pool": False,
        "init": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=5000;",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "layer": "channels.layers.InMemoryChannelLayer",
        "broker": "dramatiq.brokers.stub.StubBroker",
        "worker": True,
    }


def test_production_mode_uses_postgres_pool_redis_and_redis_broker():
    assert _mode(DATABASE_URL="postgres://u@db:5432/fw", REDIS_URL="redis://r:6379/0") == {
        "engine": "config.postgresql",
        "pool": True,
        "init": "",
        "cache": "django_redis.cache.RedisCache",
        "layer": "channels_redis.core.RedisChannelLayer",
        "broker": "dramatiq.brokers.redis.RedisBroker",
        "worker": False,
    }


def test_amqp_broker_url_selects_rabbitmq():
    mode = _mode(DATABASE_URL="postgres://u@db/fw", REDIS_URL="redis://r/0", BROKER_URL="amqp://guest:guest@mq//")
    assert mode["broker"] == "dramatiq.brokers.rabbitmq.RabbitmqBroker"


def test_check_deploy_is_clean_with_production_variables():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        HTTPS="1",
        ALLOWED_HOSTS="framewise.example.com",
        SECRET_KEY="x" * 20 + "-production-secret-with-enough-entropy-1234567890",
        DATABASE_URL="postgres://u@db:5432/fw",
        REDIS_URL="redis://r:6379/0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_the_embedded_fallback_key():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], HTTPS="1")
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr

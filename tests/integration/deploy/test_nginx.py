"""deploy/nginx/map-api.conf: nginx accepts it, and it caches tiles and overwrites XFF."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CONF = ROOT / "deploy" / "nginx" / "map-api.conf"
CACHED = "~ ^/api/(tiles/|(categories|agencies|datasets)$)"  # the cached location


def _locations(text: str) -> dict[str, str]:
    """Each `location` block's body by its path (the config has no nested blocks in them)."""
    code = re.sub(r"#[^\n]*", "", text)  # comments may mention locations and directives
    return {
        m.group(1).strip(): m.group(2)
        for m in re.finditer(r"\blocation\s+([^{]+)\{([^}]*)\}", code)
    }


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        pytest.fail("nginx is missing: run scripts/install-system-packages.sh")
    # The compose host name and cache directory exist only in the container: point them here.
    site = CONF.read_text().replace("map-api:8000", "127.0.0.1:8000")
    site = site.replace("/var/cache/nginx/tiles", str(tmp_path / "cache"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{ access_log off; include {tmp_path}/site.conf; }}\n"
    )
    result = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_location_overwrites_x_forwarded_for() -> None:
    locations = _locations(CONF.read_text())
    assert set(locations) == {CACHED, "= /api/stream", "/"}
    for path, body in locations.items():
        assert "proxy_pass http://map_api;" in body, path
        # nginx drops outer proxy_set_header lines once a location has its own: each must say it.
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in body, path
        assert "$proxy_add_x_forwarded_for" not in body, path


def test_tiles_and_the_map_lists_are_cached_by_their_url_and_revalidated() -> None:
    pattern = re.compile(CACHED.removeprefix("~ "))  # nginx's PCRE and Python agree on it
    for path in ("/api/tiles/14/1/2.json", "/api/categories", "/api/agencies", "/api/datasets"):
        assert pattern.search(path), path
    for path in ("/api/requests", "/api/categoriesx", "/api/stats", "/x/api/tiles/1/1/1.json"):
        assert not pattern.search(path), path
    tiles = _locations(CONF.read_text())[CACHED]
    for directive in (
        "proxy_cache tiles;",
        "proxy_cache_key $uri$is_args$args;",
        "proxy_cache_revalidate on;",
        "proxy_cache_lock on;",
        "proxy_cache_use_stale updating",
        "proxy_ignore_headers Vary;",
    ):
        assert directive in tiles
    stream = _locations(CONF.read_text())["= /api/stream"]
    assert "proxy_buffering off;" in stream and "proxy_cache off;" in stream


def test_compose_trusts_only_the_proxy_for_x_forwarded_for() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    proxy = compose["services"]["map-proxy"]
    address = proxy["networks"]["edge"]["ipv4_address"]
    assert "./deploy/nginx/map-api.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    api = compose["services"]["map-api"]
    assert api["environment"]["MAP_API_TRUSTED_PROXIES"] == address
    assert "edge" in api["networks"]

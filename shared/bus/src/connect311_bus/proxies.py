"""Which peers may say who the client is (X-Forwarded-For), as uvicorn options.

uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise, so anything on the
same host (or a proxy that appends to a client-supplied header) could pick its own client
address and walk past per-IP limits. Here the default is to believe nobody: the peer
address is the client. An operator who runs a proxy names it explicitly.
"""

from __future__ import annotations

from typing import Any

__all__ = ["proxy_options"]


def proxy_options(trusted_proxies: str) -> dict[str, Any]:
    """uvicorn Config/run keyword arguments for a comma-separated list of proxy IPs/CIDRs.

    Empty: proxy headers are ignored entirely (uvicorn's FORWARDED_ALLOW_IPS is not read).
    """
    hosts = [item.strip() for item in trusted_proxies.split(",") if item.strip()]
    if not hosts:
        return {"proxy_headers": False, "forwarded_allow_ips": []}
    return {"proxy_headers": True, "forwarded_allow_ips": hosts}

"""Where the engine may send an HTTP request: the rules for webhook URLs.

Checked when a URL is registered (by its literal host) and again when sending (by the
addresses its name resolves to), so a name that later points inside the network is refused too.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# The instance-metadata endpoints of the clouds (IPv4 link-local and AWS's IPv6 one): refused
# even where private targets are allowed, since they hand out credentials.
METADATA_HOSTS = frozenset({"169.254.169.254", "fd00:ec2::254", "metadata.google.internal", "metadata"})


class UrlRefused(ValueError):
    pass


def _address_problem(host: str, allow_private: bool) -> str | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None  # a name: its addresses are checked when sending
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_link_local or str(ip) in METADATA_HOSTS:
        return "link-local and cloud-metadata addresses are never allowed"
    if allow_private:
        return None
    if ip.is_loopback or ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return "private, loopback and reserved addresses are not allowed in this deployment"
    return None


def check_url(url: str, allow_private: bool) -> None:
    """Raise UrlRefused saying why ``url`` may not be a webhook target."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise UrlRefused("must be an https URL")
    if parts.scheme == "http" and not allow_private:
        raise UrlRefused("must be an https URL (plain http only where private targets are allowed)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused("must not carry credentials; register a webhook secret instead")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UrlRefused("must name a host")
    if host in METADATA_HOSTS:
        raise UrlRefused("link-local and cloud-metadata addresses are never allowed")
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise UrlRefused("private, loopback and reserved addresses are not allowed in this deployment")
    problem = _address_problem(host, allow_private)
    if problem:
        raise UrlRefused(problem)


def check_resolved(addresses: list[str], allow_private: bool) -> None:
    """At send time: every address the host resolved to must pass the same rules."""
    for address in addresses:
        problem = _address_problem(address, allow_private)
        if problem:
            raise UrlRefused(f"resolves to {address}: {problem}")

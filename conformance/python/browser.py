"""A minimal scripted user agent for the idp interaction pages.

Cookie jar + manual redirects; stops at the first redirect leaving the issuer
origin (the client's redirect_uri on 127.0.0.1:9 is not listening) and returns
it as the callback.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit

import requests

REDIRECTS = {301, 302, 303, 307, 308}


class LoopbackCookiePolicy(DefaultCookiePolicy):
    """Treat http://127.0.0.1 as a secure context, like browsers do for loopback."""

    def return_ok_secure(self, cookie, request):  # noqa: D401
        host = urlsplit(request.get_full_url()).hostname
        if host in ("127.0.0.1", "localhost", "::1"):
            return True
        return super().return_ok_secure(cookie, request)


def hidden_input(page: str, name: str) -> str | None:
    m = re.search(r'name="%s"\s+value="([^"]*)"' % re.escape(name), page)
    return htmllib.unescape(m.group(1)) if m else None


def input_tag(page: str, name: str) -> str | None:
    m = re.search(r'<input\b[^>]*\bname="%s"[^>]*>' % re.escape(name), page, re.I)
    return m.group(0) if m else None


def attr(tag: str | None, name: str) -> str | None:
    if not tag:
        return None
    m = re.search(r'\b%s="([^"]*)"' % re.escape(name), tag)
    return htmllib.unescape(m.group(1)) if m else None


def form_action(page: str) -> str | None:
    m = re.search(r'<form\b[^>]*\baction="([^"]*)"', page, re.I)
    return htmllib.unescape(m.group(1)) if m else None


def page_kind(page: str, url: str) -> str | None:
    action = form_action(page)
    if not action:
        return None
    path = urlsplit(urljoin(url, action)).path
    for k in ("login", "consent", "select-account"):
        if path == "/" + k:
            return k
    return None


@dataclass
class Drive:
    callback: str | None
    pages: list = field(default_factory=list)
    last: requests.Response | None = None
    trace: list = field(default_factory=list)
    stopped_at: str | None = None

    def describe(self) -> str:
        body = (self.last.text if self.last is not None else "")[:300]
        return "trace: " + " | ".join(self.trace) + " ; page: " + re.sub(r"\s+", " ", body)


class Browser:
    def __init__(self, issuer: str):
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
        self.s = requests.Session()
        self.s.cookies.set_policy(LoopbackCookiePolicy())
        self.s.headers["Accept"] = "text/html,application/xhtml+xml,*/*"

    def request(self, url: str, method: str = "GET", form: dict | None = None) -> requests.Response:
        return self.s.request(method, url, data=form, allow_redirects=False, timeout=15)

    @staticmethod
    def location(resp: requests.Response) -> str | None:
        loc = resp.headers.get("Location")
        return urljoin(resp.url, loc) if loc else None

    def drive(self, url: str, user: dict | None = None, method: str = "GET", form: dict | None = None,
              consent: str = "allow", account: str = "continue", stop_at: str | None = None) -> Drive:
        d = Drive(callback=None)
        resp = self.request(url, method, form)
        login_submits = 0
        for _ in range(20):
            loc = self.location(resp)
            d.trace.append(f"{resp.status_code} {urlsplit(resp.url).path}" + (f" -> {loc}" if loc else ""))
            d.last = resp
            if resp.status_code in REDIRECTS and loc:
                o = urlsplit(loc)
                if f"{o.scheme}://{o.netloc}" != self.origin:
                    d.callback = loc
                    return d
                resp = self.request(loc)
                continue
            kind = page_kind(resp.text, resp.url) if resp.status_code in (200, 401) else None
            if kind is None or kind == stop_at:
                d.stopped_at = kind
                return d
            d.pages.append(kind)
            action = urljoin(resp.url, form_action(resp.text))
            req = hidden_input(resp.text, "req")
            csrf = hidden_input(resp.text, "csrf")
            if kind == "login":
                if user is None or login_submits >= 1:
                    d.stopped_at = kind
                    return d
                login_submits += 1
                resp = self.request(action, "POST", {
                    "req": req, "csrf": csrf, "username": user["username"], "password": user["password"]})
            elif kind == "consent":
                resp = self.request(action, "POST", {"req": req, "csrf": csrf, "decision": consent})
            else:
                resp = self.request(action, "POST", {"req": req, "csrf": csrf, "choice": account})
        raise RuntimeError("too many hops: " + " | ".join(d.trace))

"""OpenID Foundation basic + config plan checks against a running idp, with authlib.

Usage: CONF_FILE=clients.json python conformance.py
Prints one PASS/FAIL line per check and "python: N passed, M failed".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
import traceback
import warnings
from urllib.parse import urlencode, urlsplit

import requests

from browser import Browser, attr, input_tag
from rp import POST_LOGOUT_URI, REDIRECT_URI, RP, expect_oauth_error, jwt_part, query

with warnings.catch_warnings():  # authlib.jose announces its move to joserfc on import
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey
    from joserfc.jwk import ECKey

CONF = json.load(open(os.environ["CONF_FILE"], encoding="utf-8"))
ISSUER = CONF["issuer"]
USER = CONF["user"]
CLIENTS = CONF["clients"]

CHECKS = []


def check(name):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn

    return deco


def rp(name, **kw) -> RP:
    return RP(ISSUER, CLIENTS[name], **kw)


def now() -> int:
    return int(time.time())


class Ctx:
    """State shared between checks (a logged-in browser, a first ID token)."""

    browser = Browser(ISSUER)
    first_id_token = None


def flow(app: RP, browser: Browser, scope="openid", user=USER, post=False, **params) -> dict:
    """Authorization request -> browser -> callback -> token exchange -> ID token validation."""
    req = app.auth_request(scope=scope, **params)
    if post:
        d = browser.drive(app.md["authorization_endpoint"], user=user, method="POST",
                          form=query(req["url"]))
    else:
        d = browser.drive(req["url"], user=user)
    assert d.callback, "authorization did not return to the client; " + d.describe()
    q = query(d.callback)
    assert "code" in q, f"no code in callback {d.callback}"
    assert q.get("state") == req["state"], "state echoed"
    token = app.exchange(req, d.callback)
    claims = app.id_token_claims(token, req.get("nonce"))
    return {"req": req, "drive": d, "token": token, "claims": claims, "callback": d.callback}


def userinfo(app: RP, token: dict) -> dict:
    return dict(app.userinfo(token=token))


def status_of(method: str, url: str, **kw) -> requests.Response:
    return requests.request(method, url, allow_redirects=False, timeout=15, **kw)


def at_hash(access_token: str) -> str:
    d = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(d[: len(d) // 2]).rstrip(b"=").decode()


# --------------------------------------------------------------------------- config
@check("discovery: metadata loaded by authlib, issuer equal, endpoints on issuer")
def _():
    md = rp("basic").md
    assert md["issuer"] == ISSUER, f"issuer {md['issuer']!r} != {ISSUER!r}"
    for k, path in [("authorization_endpoint", "/authorize"), ("token_endpoint", "/token"),
                    ("userinfo_endpoint", "/userinfo"), ("jwks_uri", "/jwks"),
                    ("revocation_endpoint", "/revoke"), ("introspection_endpoint", "/introspect"),
                    ("end_session_endpoint", "/logout")]:
        assert md.get(k) == ISSUER + path, f"{k}={md.get(k)!r}"
    assert md["response_types_supported"] == ["code"], md["response_types_supported"]
    assert "S256" in md["code_challenge_methods_supported"]
    assert {"ES256", "RS256"} <= set(md["id_token_signing_alg_values_supported"])
    assert {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"} <= set(
        md["token_endpoint_auth_methods_supported"])
    assert {"openid", "profile", "email", "phone", "address", "offline_access"} <= set(md["scopes_supported"])
    assert md.get("claims_parameter_supported") is True
    assert md.get("authorization_response_iss_parameter_supported") is True
    assert md.get("subject_types_supported"), "subject_types_supported"


@check("discovery: JWKS imported by authlib; kid/alg/use on every key, no private members")
def _():
    app = rp("basic")
    jwks = app.fetch_jwk_set(force=True)
    keyset = JsonWebKey.import_key_set(jwks)
    assert len(keyset.keys) == len(jwks["keys"]) > 0
    kids = [k.get("kid") for k in jwks["keys"]]
    assert all(kids) and len(set(kids)) == len(kids), f"kids {kids}"
    for k in jwks["keys"]:
        assert k.get("alg") in ("ES256", "RS256", "PS256"), f"alg {k.get('alg')}"
        assert k.get("use") == "sig", f"use {k.get('use')}"
        leaked = {"d", "p", "q", "dp", "dq", "qi", "k"} & set(k)
        assert not leaked, f"private members {leaked} in {k['kid']}"
    assert {k["alg"] for k in jwks["keys"]} >= {"ES256", "RS256"}


# --------------------------------------------------------------------------- code flow
@check("happy flow: login + consent, code+PKCE, ID token verified by authlib, userinfo sub matches")
def _():
    app = rp("basic")
    r = flow(app, Ctx.browser, scope="openid profile email")
    d = r["drive"]
    assert "login" in d.pages, f"login page expected, pages={d.pages}"
    assert "consent" in d.pages, f"first use of a non-first-party client must ask consent, pages={d.pages}"
    tok, c = r["token"], r["claims"]
    assert jwt_part(tok["id_token"], 0)["alg"] == "ES256"
    assert c["sub"] == USER["sub"], f"sub {c['sub']} != CLI sub {USER['sub']}"
    assert c["nonce"] == r["req"]["nonce"]
    assert c.get("at_hash") == at_hash(tok["access_token"]), "at_hash"
    assert isinstance(c.get("auth_time"), int), "auth_time"
    assert c["exp"] > now() and c["iat"] <= now() + 5
    assert tok["token_type"].lower() == "bearer"
    cc = (app.last_response.headers.get("Cache-Control") or "").lower()
    assert "no-store" in cc, f"token response Cache-Control: {cc!r} (RFC 6749 5.1)"
    ui = userinfo(app, tok)
    assert ui["sub"] == c["sub"], "userinfo sub equals id_token sub"
    assert ui.get("name") == USER["name"] and ui.get("email") == USER["email"], ui
    Ctx.first_id_token = tok["id_token"]


@check("second authorization: consent remembered, session reused (no pages)")
def _():
    r = flow(rp("basic"), Ctx.browser, scope="openid profile email")
    assert r["drive"].pages == [], r["drive"].pages


@check("nonce returned unchanged in the ID token")
def _():
    r = flow(rp("basic"), Ctx.browser, nonce="n-0S6_WzA2Mj-" + str(now()))
    assert r["claims"]["nonce"] == r["req"]["nonce"]


def scope_check(scope, must, must_not=()):
    app = rp("basic")
    r = flow(app, Ctx.browser, scope=scope)
    ui = userinfo(app, r["token"])
    for k, v in must.items():
        got = ui.get(k)
        if callable(v):
            assert v(got), f"{k}={got!r}"
        else:
            assert got == v, f"{k}={got!r}, expected {v!r}"
    for k in must_not:
        assert k not in ui, f"{k} released without its scope: {ui}"
    return r


@check("scope profile")
def _():
    scope_check("openid profile", {"name": USER["name"], "preferred_username": USER["username"],
                                   "updated_at": lambda v: isinstance(v, int)}, ["email", "phone_number"])


@check("scope email")
def _():
    scope_check("openid email", {"email": USER["email"], "email_verified": lambda v: isinstance(v, bool)},
                ["name", "phone_number"])


@check("scope phone")
def _():
    scope_check("openid phone", {"phone_number": lambda v: USER["phone"] in str(v),
                                 "phone_number_verified": lambda v: isinstance(v, bool)}, ["email", "name"])


@check("scope address")
def _():
    r = scope_check("openid address", {"address": lambda v: v is None or isinstance(v, dict)}, ["email"])
    if "scope" in r["token"]:
        assert "address" in r["token"]["scope"].split(), r["token"]["scope"]


@check("scope offline_access issues a refresh token")
def _():
    r = flow(rp("basic"), Ctx.browser, scope="openid offline_access")
    assert r["token"].get("refresh_token"), r["token"]


@check("prompt=none while logged in -> code without interaction")
def _():
    r = flow(rp("basic"), Ctx.browser, prompt="none")
    assert r["drive"].pages == []


@check("prompt=none without session -> login_required with state and iss")
def _():
    app = rp("basic")
    req = app.auth_request(prompt="none")
    d = Browser(ISSUER).drive(req["url"])
    assert d.callback, d.describe()
    q = query(d.callback)
    assert q.get("error") == "login_required", q
    assert "code" not in q
    assert q.get("state") == req["state"] and q.get("iss") == ISSUER, q


@check("prompt=login forces login, fresh auth_time")
def _():
    t0 = now()
    time.sleep(1.1)
    r = flow(rp("basic"), Ctx.browser, prompt="login")
    assert "login" in r["drive"].pages, r["drive"].pages
    assert r["claims"]["auth_time"] > t0, f"auth_time {r['claims']['auth_time']} <= {t0}"


@check("max_age=1 after 2 s forces login, fresh auth_time")
def _():
    flow(rp("basic"), Ctx.browser)
    time.sleep(2.1)
    t0 = now()
    r = flow(rp("basic"), Ctx.browser, max_age="1")
    assert "login" in r["drive"].pages, r["drive"].pages
    assert r["claims"]["auth_time"] >= t0, f"auth_time {r['claims']['auth_time']} < {t0}"


@check("code reuse -> invalid_grant and the first access token is revoked")
def _():
    app = rp("basic")
    req = app.auth_request()
    d = Ctx.browser.drive(req["url"], user=USER)
    assert d.callback, d.describe()
    tok = app.exchange(req, d.callback)
    assert userinfo(app, tok)["sub"] == USER["sub"]
    e = expect_oauth_error(app.exchange, req, d.callback)
    assert e.error == "invalid_grant", e.error
    assert app.last_response.status_code == 400, app.last_response.status_code
    r = status_of("GET", app.md["userinfo_endpoint"], headers={"Authorization": "Bearer " + tok["access_token"]})
    assert r.status_code == 401, f"first access token still valid after code reuse: {r.status_code}"


@check("unregistered redirect_uri -> 400 error page, no redirect")
def _():
    req = rp("basic").auth_request(redirect_uri="http://127.0.0.1:9/evil")
    r = Ctx.browser.request(req["url"])
    assert r.status_code == 400 and "Location" not in r.headers, (r.status_code, r.headers.get("Location"))


@check("redirect_uri with added query -> 400 error page, no redirect")
def _():
    req = rp("basic").auth_request(redirect_uri=REDIRECT_URI + "?x=1")
    r = Ctx.browser.request(req["url"])
    assert r.status_code == 400 and "Location" not in r.headers, (r.status_code, r.headers.get("Location"))


@check("POST authorization request")
def _():
    r = flow(rp("basic"), Ctx.browser, post=True, scope="openid email")
    assert r["claims"]["sub"] == USER["sub"]


@check("client_secret_post client: flow + token exchange")
def _():
    app = rp("post")
    r = flow(app, Ctx.browser, scope="openid email")
    assert r["claims"]["aud"] in (CLIENTS["post"]["client_id"], [CLIENTS["post"]["client_id"]])
    assert userinfo(app, r["token"])["email"] == USER["email"]


@check("client_secret_post with a wrong secret -> invalid_client 401")
def _():
    app = rp("post", secret="wrong-secret")
    e = expect_oauth_error(app.client_credentials)
    assert e.error == "invalid_client", e.error
    assert app.last_response.status_code == 401, app.last_response.status_code


@check("refresh token: rotation, new access token works, old refresh token -> invalid_grant")
def _():
    app = rp("basic")
    r = flow(app, Ctx.browser, scope="openid profile offline_access")
    rt1 = r["token"]["refresh_token"]
    t2 = app.refresh(rt1)
    assert t2["access_token"] != r["token"]["access_token"]
    assert t2.get("refresh_token") and t2["refresh_token"] != rt1, "refresh token must rotate"
    if "id_token" in t2:
        c2 = app.id_token_claims(t2, None)
        assert c2["sub"] == r["claims"]["sub"]
    assert userinfo(app, t2)["name"] == USER["name"]
    e = expect_oauth_error(app.refresh, rt1)
    assert e.error == "invalid_grant", e.error


@check("refresh token presented by another client -> invalid_grant")
def _():
    r = flow(rp("basic"), Ctx.browser, scope="openid offline_access")
    e = expect_oauth_error(rp("other").refresh, r["token"]["refresh_token"])
    assert e.error == "invalid_grant", e.error


@check("refresh with a scope not originally granted -> invalid_scope")
def _():
    app = rp("basic")
    r = flow(app, Ctx.browser, scope="openid offline_access")
    e = expect_oauth_error(app.refresh, r["token"]["refresh_token"], scope="openid offline_access email")
    assert e.error == "invalid_scope", e.error


@check("PKCE wrong code_verifier -> invalid_grant")
def _():
    app = rp("basic")
    req = app.auth_request()
    d = Ctx.browser.drive(req["url"], user=USER)
    assert d.callback, d.describe()
    e = expect_oauth_error(app.exchange, req, d.callback, code_verifier="x" * 50)
    assert e.error == "invalid_grant", e.error


@check("public client with PKCE works (auth method none)")
def _():
    app = rp("public")
    r = flow(app, Ctx.browser, scope="openid")
    assert r["claims"]["sub"] == USER["sub"]


@check("public client without PKCE -> error, no tokens")
def _():
    app = rp("public", pkce=False)
    req = app.auth_request()
    assert "code_challenge" not in req["url"]
    d = Ctx.browser.drive(req["url"], user=USER)
    if not d.callback:
        assert d.last.status_code >= 400, d.describe()
        return
    q = query(d.callback)
    if "error" in q:
        assert "code" not in q
        assert q["error"] == "invalid_request", q
        return
    e = expect_oauth_error(app.exchange, req, d.callback)
    assert e.error in ("invalid_grant", "invalid_request"), e.error


@check("claims parameter: essential email in the ID token")
def _():
    r = flow(rp("basic"), Ctx.browser, scope="openid",
             claims=json.dumps({"id_token": {"email": {"essential": True}}}))
    assert r["claims"].get("email") == USER["email"], r["claims"]


@check("unknown parameters ignored; display/claims_locales/acr_values accepted")
def _():
    r = flow(rp("basic"), Ctx.browser, unknown_param_xyz="1", display="popup", claims_locales="se",
             acr_values="1 2")
    assert r["claims"]["sub"] == USER["sub"]


@check("acr_values: the ID token asserts a level the account has; essential unmet -> error")
def _():
    md = rp("basic").md
    assert "urn:idp:loa:1" in md.get("acr_values_supported", []), md.get("acr_values_supported")
    # The CLI-made user has no proven identity: L1, whatever is asked voluntarily.
    r = flow(rp("basic"), Ctx.browser, acr_values="urn:idp:loa:4")
    assert r["claims"].get("acr") == "urn:idp:loa:1", r["claims"]
    assert "pwd" in r["claims"].get("amr", []), r["claims"]
    # Essential: the proper error at the client, never a weaker token.
    app = rp("basic")
    essential = {"id_token": {"acr": {"essential": True, "values": ["urn:idp:loa:4"]}}}
    req = app.auth_request(scope="openid", claims=json.dumps(essential))
    d = Ctx.browser.drive(req["url"], user=USER)
    assert d.callback, "no redirect back to the client; " + d.describe()
    q = query(d.callback)
    assert q.get("error") == "unmet_authentication_requirements" and "code" not in q, q


@check("id_token_hint with prompt=none -> code for the same user")
def _():
    assert Ctx.first_id_token, "needs the happy-flow ID token"
    r = flow(rp("basic"), Ctx.browser, prompt="none", id_token_hint=Ctx.first_id_token)
    assert r["claims"]["sub"] == jwt_part(Ctx.first_id_token, 1)["sub"]


@check("login_hint prefills the username input")
def _():
    req = rp("basic").auth_request(login_hint=USER["username"])
    d = Browser(ISSUER).drive(req["url"], stop_at="login")
    assert d.stopped_at == "login", d.describe()
    tag = input_tag(d.last.text, "username")
    assert attr(tag, "value") == USER["username"], tag


@check("ui_locales=en -> English page; default zh-CN")
def _():
    app = rp("basic")
    d = Browser(ISSUER).drive(app.auth_request(ui_locales="en")["url"], stop_at="login")
    assert d.stopped_at == "login", d.describe()
    assert '<html lang="en"' in d.last.text, d.last.text[:200]
    d = Browser(ISSUER).drive(app.auth_request()["url"], stop_at="login")
    assert '<html lang="zh-CN"' in d.last.text, d.last.text[:200]


@check("RS256 client: RS256 ID token verified by authlib against the JWKS")
def _():
    app = rp("rs256")
    r = flow(app, Ctx.browser, scope="openid profile")
    hdr = jwt_part(r["token"]["id_token"], 0)
    assert hdr["alg"] == "RS256", hdr
    kid_algs = {k["kid"]: k["alg"] for k in app.fetch_jwk_set()["keys"]}
    assert kid_algs.get(hdr.get("kid")) == "RS256", f"kid {hdr.get('kid')} not an RS256 key"
    assert r["claims"]["sub"] == USER["sub"]


@check("unsigned request object: processed correctly or rejected with request_not_supported")
def _():
    app = rp("basic")
    base = app.auth_request()
    q = query(base["url"])
    inner_nonce = "req-obj-nonce-" + str(now())
    payload = {k: v for k, v in q.items()}
    payload.update({"nonce": inner_nonce, "iss": q["client_id"], "aud": ISSUER})
    b64 = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()  # noqa: E731
    request_obj = b64({"alg": "none"}) + "." + b64(payload) + "."
    outer = {k: v for k, v in q.items() if k != "nonce"}
    outer["request"] = request_obj
    d = Ctx.browser.drive(app.md["authorization_endpoint"] + "?" + urlencode(outer), user=USER)
    assert d.callback, "no redirect back to the client; " + d.describe()
    cq = query(d.callback)
    if "error" in cq:
        assert cq["error"] in ("request_not_supported", "invalid_request_object"), cq
        return
    tok = app.exchange(base, d.callback)
    claims = jwt_part(tok["id_token"], 1)
    assert claims.get("nonce") == inner_nonce, (
        f"request object silently ignored: ID token nonce={claims.get('nonce')!r}, expected {inner_nonce!r}")


@check("request_uri: processed or rejected with request_uri_not_supported / invalid_request_uri")
def _():
    app = rp("basic")
    q = query(app.auth_request()["url"])
    q["request_uri"] = "http://127.0.0.1:9/request.jwt"  # nothing listens there
    d = Ctx.browser.drive(app.md["authorization_endpoint"] + "?" + urlencode(q), user=USER)
    assert d.callback, "no redirect back to the client; " + d.describe()
    cq = query(d.callback)
    assert "code" not in cq, f"request_uri silently ignored: {d.callback}"
    assert cq.get("error") in ("request_uri_not_supported", "invalid_request_uri"), cq
    assert cq.get("state") == q["state"] and cq.get("iss") == ISSUER, cq


@check("prompt=none, logged in, consent never given -> consent_required")
def _():
    app = rp("consent")
    req = app.auth_request(prompt="none", scope="openid profile")
    d = Ctx.browser.drive(req["url"])
    assert d.callback, d.describe()
    q = query(d.callback)
    assert q.get("error") == "consent_required", q
    assert q.get("state") == req["state"] and q.get("iss") == ISSUER, q


@check("consent denied -> access_denied")
def _():
    app = rp("consent")
    req = app.auth_request(scope="openid profile")
    d = Ctx.browser.drive(req["url"], user=USER, consent="deny")
    assert "consent" in d.pages, d.pages
    assert d.callback, d.describe()
    q = query(d.callback)
    assert q.get("error") == "access_denied" and "code" not in q, q
    assert q.get("state") == req["state"] and q.get("iss") == ISSUER, q


@check("client_credentials grant")
def _():
    app = rp("basic")
    t = app.client_credentials()
    assert t["access_token"] and t["token_type"].lower() == "bearer"
    assert "id_token" not in t and "refresh_token" not in t, t
    i = app.introspect(t["access_token"]).json()
    assert i.get("active") is True and i.get("client_id") == CLIENTS["basic"]["client_id"], i


@check("introspection active, revoke, then inactive and userinfo 401")
def _():
    app = rp("basic")
    r = flow(app, Ctx.browser, scope="openid profile")
    at = r["token"]["access_token"]
    i = app.introspect(at, "access_token")
    assert i.status_code == 200, i.status_code
    ij = i.json()
    assert ij.get("active") is True and ij.get("sub") == USER["sub"], ij
    rv = app.revoke(at, "access_token")
    assert rv.status_code == 200, f"revocation status {rv.status_code}"
    assert app.introspect(at).json().get("active") is False
    u = status_of("GET", app.md["userinfo_endpoint"], headers={"Authorization": "Bearer " + at})
    assert u.status_code == 401, u.status_code


@check("revocation of an unknown token -> 200 (RFC 7009 2.2)")
def _():
    rv = rp("basic").revoke("definitely-not-a-token")
    assert rv.status_code == 200, rv.status_code


@check("userinfo: GET header, POST header, POST form body")
def _():
    app = rp("basic")
    r = flow(app, Ctx.browser, scope="openid email")
    at = r["token"]["access_token"]
    ep = app.md["userinfo_endpoint"]
    for how, resp in [
        ("GET", status_of("GET", ep, headers={"Authorization": "Bearer " + at})),
        ("POST header", status_of("POST", ep, headers={"Authorization": "Bearer " + at})),
        ("POST body", status_of("POST", ep, data={"access_token": at})),
    ]:
        assert resp.status_code == 200, f"{how}: {resp.status_code}"
        j = resp.json()
        assert j.get("sub") == USER["sub"] and j.get("email") == USER["email"], f"{how}: {j}"
    bad = status_of("GET", ep, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401, bad.status_code


@check("RP-initiated logout: redirect with state, then prompt=none -> login_required")
def _():
    app = rp("basic")
    b = Browser(ISSUER)
    r = flow(app, b)
    lo = app.create_logout_url(post_logout_redirect_uri=POST_LOGOUT_URI, id_token_hint=r["token"]["id_token"])
    d = b.drive(lo["url"])
    assert d.callback, "no redirect after logout; " + d.describe()
    parts = urlsplit(d.callback)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == POST_LOGOUT_URI, d.callback
    assert query(d.callback).get("state") == lo["state"], d.callback
    req = app.auth_request(prompt="none")
    d2 = b.drive(req["url"])
    assert d2.callback and query(d2.callback).get("error") == "login_required", d2.describe()


# --------------------------------------------------------------------------- private_key_jwt and PAR (issue 17)
def pkjwt_rp() -> RP:
    c = CLIENTS["pkjwt"]
    return RP(ISSUER, c, secret=ECKey.import_key(c["key"]))


@check("private_key_jwt (authlib PrivateKeyJWT, ES256): code flow, refresh and client_credentials")
def _():
    app = pkjwt_rp()
    r = flow(app, Ctx.browser, scope="openid profile offline_access")
    assert r["claims"]["sub"] == USER["sub"], r["claims"]
    assert userinfo(app, r["token"])["sub"] == USER["sub"]
    t2 = app.refresh(r["token"]["refresh_token"])
    assert t2["access_token"] and t2["refresh_token"] != r["token"]["refresh_token"], t2
    cc = app.client_credentials()
    assert cc["access_token"], cc
    # A secret is no way in for a private_key_jwt client.
    bad = status_of("POST", app.md["token_endpoint"], auth=(CLIENTS["pkjwt"]["client_id"], "guess"),
                    data={"grant_type": "client_credentials"})
    assert bad.status_code == 401 and bad.json().get("error") == "invalid_client", bad.text


@check("PAR push authenticated with private_key_jwt (authlib), the request_uri signs in once")
def _():
    app = pkjwt_rp()
    md = app.md
    assert md.get("pushed_authorization_request_endpoint") == ISSUER + "/par", md
    req = app.auth_request(scope="openid profile")
    params = query(req["url"])
    with app.session() as s:
        pushed = s.post(md["pushed_authorization_request_endpoint"], data=params,
                        auth=s.client_auth("private_key_jwt"), withhold_token=True)
        unauth = s.post(md["pushed_authorization_request_endpoint"], data=params, withhold_token=True)
    assert pushed.status_code == 201, f"{pushed.status_code} {pushed.text}"
    body = pushed.json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:"), body
    assert isinstance(body.get("expires_in"), int) and body["expires_in"] > 0, body
    assert unauth.status_code == 401, f"a push without client authentication: {unauth.status_code}"
    url = md["authorization_endpoint"] + "?" + urlencode(
        {"client_id": CLIENTS["pkjwt"]["client_id"], "request_uri": body["request_uri"]})
    d = Ctx.browser.drive(url, user=USER)
    assert d.callback, "authorization did not return to the client; " + d.describe()
    token = app.exchange(req, d.callback)
    claims = app.id_token_claims(token, req.get("nonce"))
    assert claims["sub"] == USER["sub"], claims
    again = status_of("GET", url)
    assert again.status_code == 400 and "location" not in again.headers, (
        f"a used request_uri: {again.status_code} {again.headers.get('location')}")


# --------------------------------------------------------------------------- runner
def main() -> int:
    passed = failed = 0
    for name, fn in CHECKS:
        t = time.time()
        try:
            fn()
        except AssertionError as e:
            failed += 1
            print(f"FAIL [python] {name}: {e or 'assertion failed'}", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            detail = getattr(e, "error", None)
            desc = getattr(e, "description", None)
            tb = traceback.extract_tb(e.__traceback__)[-1]
            print(f"FAIL [python] {name}: {type(e).__name__}: {e}"
                  + (f" [error={detail} {desc or ''}]" if detail else "")
                  + f" (at {os.path.basename(tb.filename)}:{tb.lineno})", flush=True)
        else:
            passed += 1
            print(f"PASS [python] {name} ({int((time.time() - t) * 1000)} ms)", flush=True)
    print(f"python: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

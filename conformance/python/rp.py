"""Relying party built from authlib's own client classes.

authlib does the protocol work: discovery (OAuth2Mixin.load_server_metadata),
authorization URL with PKCE S256 + nonce + state (create_authorization_url),
state check and token exchange (fetch_access_token), ID token JWS verification
against the JWKS and claim validation incl. nonce / at_hash / azp / exp / iss /
aud (OpenIDMixin.parse_id_token with CodeIDToken), userinfo, refresh,
revocation (RFC 7009), introspection (RFC 7662) and the end-session URL.
"""

from __future__ import annotations

import base64
import json
import warnings
from urllib.parse import parse_qs, urlsplit

warnings.filterwarnings("ignore", category=DeprecationWarning)

from authlib.integrations.base_client import (  # noqa: E402
    BaseApp,
    FrameworkIntegration,
    OAuth2Mixin,
    OAuthError,
    OpenIDMixin,
)
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # noqa: E402
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign  # noqa: E402

REDIRECT_URI = "http://127.0.0.1:9/cb"
POST_LOGOUT_URI = "http://127.0.0.1:9/out"


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """authlib's PrivateKeyJWT (ES256), with assertions that live 60 s.

    authlib signs `exp = iat + 3600` by default; the provider refuses
    assertions valid for more than 10 minutes (RFC 7523 §3 lets it), as the
    FAPI profiles expect short-lived ones. Everything else (iss = sub =
    client_id, aud = the configured token endpoint, a fresh jti) is authlib's.
    """

    alg = "ES256"

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(
            auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint, alg=self.alg,
            expires_in=60)


class _NoFramework(FrameworkIntegration):
    def update_token(self, token, refresh_token=None, access_token=None):
        pass


class RP(OAuth2Mixin, OpenIDMixin, BaseApp):
    """An authlib OAuth 2.0 / OIDC client application bound to one registered client."""

    client_cls = OAuth2Session

    def __init__(self, issuer: str, client: dict, pkce: bool = True, secret: str | None = None):
        self.issuer = issuer
        self.client = client
        self.last_response = None
        auth = client.get("auth", "client_secret_basic")
        kwargs = {"token_endpoint_auth_method": auth, "revocation_endpoint_auth_method": auth}
        if pkce:
            kwargs["code_challenge_method"] = "S256"
        super().__init__(
            _NoFramework("conf"),
            name=client["client_id"],
            client_id=client["client_id"],
            client_secret=secret if secret is not None else client.get("client_secret"),
            server_metadata_url=issuer + "/.well-known/openid-configuration",
            client_kwargs=kwargs,
            compliance_fix=self._install_hooks,
        )

    # -- plumbing -----------------------------------------------------------
    def _install_hooks(self, session):
        def keep(resp):
            self.last_response = resp
            return resp

        session.register_compliance_hook("access_token_response", keep)
        session.register_compliance_hook("refresh_token_response", keep)
        if self.client.get("auth") == "private_key_jwt":
            # As authlib documents it: the assertion's aud is the token endpoint,
            # also where it authenticates a pushed request (RFC 9126 §2).
            session.register_client_auth_method(ShortLivedPrivateKeyJWT(self.md["token_endpoint"]))

    @property
    def md(self) -> dict:
        return self.load_server_metadata()

    def session(self):
        return self._get_oauth_client(**self.md)

    # -- authorization code flow ---------------------------------------------
    def auth_request(self, scope: str = "openid", redirect_uri: str = REDIRECT_URI, **params) -> dict:
        """Returns authlib's {'url', 'state', 'code_verifier', 'nonce'}."""
        return self.create_authorization_url(redirect_uri=redirect_uri, scope=scope, **params)

    def exchange(self, req: dict, callback: str, redirect_uri: str = REDIRECT_URI, code_verifier=...) -> dict:
        q = parse_qs(urlsplit(callback).query)
        iss = q.get("iss", [None])[0]
        if iss != self.issuer:  # RFC 9207 (authlib does not check it)
            raise AssertionError(f"authorization response iss={iss!r}, expected {self.issuer!r}")
        params = {}
        cv = req.get("code_verifier") if code_verifier is ... else code_verifier
        if cv:
            params["code_verifier"] = cv
        return self.fetch_access_token(
            redirect_uri=redirect_uri, authorization_response=callback, state=req["state"], **params)

    def id_token_claims(self, token: dict, nonce: str | None, **extra_options) -> dict:
        options = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "values": [self.client["client_id"]]},
            "sub": {"essential": True},
            **extra_options,
        }
        claims = self.parse_id_token(token, nonce=nonce, claims_options=options)
        if claims is None:
            raise AssertionError("no id_token in the token response")
        return dict(claims)

    # -- other endpoints -------------------------------------------------------
    def refresh(self, refresh_token: str, **kw) -> dict:
        with self.session() as s:
            return s.refresh_token(self.md["token_endpoint"], refresh_token=refresh_token, **kw)

    def client_credentials(self, **kw) -> dict:
        with self.session() as s:
            return s.fetch_token(self.md["token_endpoint"], grant_type="client_credentials", **kw)

    def introspect(self, token: str, hint: str | None = None):
        with self.session() as s:
            return s.introspect_token(self.md["introspection_endpoint"], token=token, token_type_hint=hint)

    def revoke(self, token: str, hint: str | None = None):
        with self.session() as s:
            return s.revoke_token(self.md["revocation_endpoint"], token=token, token_type_hint=hint)


def jwt_part(jwt: str, i: int) -> dict:
    seg = jwt.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def expect_oauth_error(fn, *args, **kwargs) -> OAuthError:
    try:
        v = fn(*args, **kwargs)
    except OAuthError as e:
        return e
    raise AssertionError(f"expected an OAuth error, got success: {str(v)[:200]}")

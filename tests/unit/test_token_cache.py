"""Bearer authentication (`video_upload.http.auth`): the verified-token cache, the header, keys."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from video_upload.config import Settings
from video_upload.domain.errors import ServiceError
from video_upload.http.auth import SECRET_FILE_NAME, Authenticator, VerifiedTokens, load_keys

SECRET = "unit-test-secret-for-the-token-cache-" + "0123456789abcdef" * 2
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(**{"_env_file": None, "data_dir": tmp_path, "jwt_secret": SECRET, **values})


def sign(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return "Bearer " + jwt.encode(claims, key, algorithm=algorithm)


def refusal(authenticator: Authenticator, header: str | None) -> str:
    with pytest.raises(ServiceError) as error:
        authenticator.user_from_header(header)
    assert (error.value.kind.code, error.value.kind.status) == ("unauthorized", 401)
    return error.value.kind.message


def test_a_remembered_token_answers_its_subject_until_its_expiry() -> None:
    clock = Clock()
    tokens = VerifiedTokens(clock)
    tokens.remember("t", "alice", NOW + 10)

    assert tokens.subject("t") == "alice"
    clock.now = NOW + 10
    with pytest.raises(ServiceError, match="expired"):
        tokens.subject("t")
    assert tokens.subject("t") is None  # forgotten once found expired


def test_an_unknown_token_is_not_an_answer() -> None:
    assert VerifiedTokens(Clock()).subject("never seen") is None


def test_the_cache_forgets_the_least_recently_used_token_first() -> None:
    tokens = VerifiedTokens(Clock(), size=2)
    tokens.remember("a", "alice", NOW + 60)
    tokens.remember("b", "bob", NOW + 60)
    assert tokens.subject("a") == "alice"  # now b is the least recently used

    tokens.remember("c", "carol", NOW + 60)

    assert (tokens.subject("a"), tokens.subject("b"), tokens.subject("c")) == (
        "alice",
        None,
        "carol",
    )


def test_a_verified_token_is_not_decoded_again_while_it_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    authenticator = Authenticator(settings(tmp_path), clock=clock)
    header = sign({"sub": "alice", "exp": NOW + 60})
    real_decode = jwt.decode
    decoded: list[str] = []

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)

    assert [authenticator.user_from_header(header) for _ in range(3)] == ["alice"] * 3
    assert len(decoded) == 1


def test_a_cached_token_is_refused_once_the_clock_passes_its_expiry(tmp_path: Path) -> None:
    clock = Clock()
    authenticator = Authenticator(settings(tmp_path), clock=clock)
    header = sign({"sub": "alice", "exp": int(NOW) + 60})
    assert authenticator.user_from_header(header) == "alice"

    clock.now = NOW + 61

    assert "expired" in refusal(authenticator, header)


def test_a_token_not_valid_yet_is_checked_again_every_time(tmp_path: Path) -> None:
    authenticator = Authenticator(settings(tmp_path), clock=Clock())
    header = sign({"sub": "alice", "exp": 4_000_000_000, "nbf": 1})

    assert authenticator.user_from_header(header) == "alice"
    assert authenticator.verified.subject(header.removeprefix("Bearer ")) is None


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer   ", "Basic YWxpY2U6c2VjcmV0", "Token abc"]
)
def test_a_header_that_is_not_a_bearer_token_is_401(tmp_path: Path, header: str | None) -> None:
    refusal(Authenticator(settings(tmp_path)), header)


def test_the_scheme_is_case_insensitive(tmp_path: Path) -> None:
    authenticator = Authenticator(settings(tmp_path))
    token = authenticator.mint("alice").strip()

    assert authenticator.user_from_header(f"bearer {token}") == "alice"
    assert authenticator.user_from_header(f"BEARER  {token} ") == "alice"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 4_000_000_000},
        {"sub": "alice"},
        {"sub": "", "exp": 4_000_000_000},
        {"sub": 7, "exp": 4_000_000_000},
    ],
)
def test_a_token_without_a_subject_or_an_expiry_is_401(
    tmp_path: Path, claims: dict[str, Any]
) -> None:
    refusal(Authenticator(settings(tmp_path)), sign(claims))


def test_a_token_signed_with_another_key_or_algorithm_is_401(tmp_path: Path) -> None:
    authenticator = Authenticator(settings(tmp_path))
    claims = {"sub": "alice", "exp": 4_000_000_000}

    assert "invalid token" in refusal(authenticator, sign(claims, key=SECRET + "-other"))
    assert "invalid token" in refusal(authenticator, sign(claims, algorithm="HS512"))


def test_the_issuer_is_required_when_configured(tmp_path: Path) -> None:
    authenticator = Authenticator(settings(tmp_path, jwt_issuer="https://issuer.example"))
    claims: dict[str, Any] = {"sub": "alice", "exp": 4_000_000_000}

    refusal(authenticator, sign(claims))
    refusal(authenticator, sign({**claims, "iss": "https://elsewhere.example"}))
    assert (
        authenticator.user_from_header(sign({**claims, "iss": "https://issuer.example"})) == "alice"
    )


def test_minted_tokens_carry_the_configured_audience_and_issuer_and_verify(tmp_path: Path) -> None:
    authenticator = Authenticator(
        settings(tmp_path, jwt_audience="video-upload", jwt_issuer="issuer"), clock=Clock()
    )
    token = authenticator.mint("alice", ttl_seconds=90)

    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="video-upload")
    assert (claims["sub"], claims["iss"], claims["exp"] - claims["iat"]) == ("alice", "issuer", 90)
    assert authenticator.user_from_header(f"Bearer {token}") == "alice"


def test_without_a_secret_one_is_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    first = load_keys(settings(tmp_path, jwt_secret=""))
    again = load_keys(settings(tmp_path, jwt_secret=""))

    secret_file = tmp_path / SECRET_FILE_NAME
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert first.verify_key == again.verify_key == secret_file.read_text().strip()
    assert len(first.verify_key) >= 32


def ec_keys() -> tuple[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def test_es256_keys_are_read_from_pem_text_with_escaped_newlines_or_from_files(
    tmp_path: Path,
) -> None:
    private_pem, public_pem = ec_keys()
    (tmp_path / "public.pem").write_text(public_pem)
    verifier = Authenticator(
        settings(
            tmp_path,
            jwt_secret="",
            jwt_algorithm="ES256",
            jwt_public_key=str(tmp_path / "public.pem"),
        )
    )
    signer = Authenticator(
        settings(
            tmp_path,
            jwt_secret="",
            jwt_algorithm="ES256",
            jwt_public_key=public_pem.replace("\n", "\\n"),
            jwt_private_key=private_pem.replace("\n", "\\n"),
        )
    )

    assert verifier.user_from_header(f"Bearer {signer.mint('alice')}") == "alice"
    with pytest.raises(ValueError, match="JWT_PRIVATE_KEY"):
        verifier.mint("alice")


def test_an_asymmetric_algorithm_without_a_public_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        Authenticator(settings(tmp_path, jwt_secret="", jwt_algorithm="RS256"))

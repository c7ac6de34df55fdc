"""HTTPS: verification on by default, a private CA, and mutual TLS, against a real worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from zc_events import EventClient, PublishError


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.example")
    paths = {
        "ca": folder / "ca.pem",
        "server_cert": folder / "server.pem",
        "server_key": folder / "server.key",
        "client_cert": folder / "client.pem",
        "client_key": folder / "client.key",
    }
    ca.cert_pem.write_to_path(paths["ca"])
    server.private_key_pem.write_to_path(paths["server_key"])
    for blob in server.cert_chain_pems:
        blob.write_to_path(paths["server_cert"], append=True)
    client.private_key_pem.write_to_path(paths["client_key"])
    for blob in client.cert_chain_pems:
        blob.write_to_path(paths["client_cert"], append=True)
    return {name: str(path) for name, path in paths.items()}


def test_https_with_the_service_ca(worker_factory, pki) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory(
        options={"ssl_certfile": pki["server_cert"], "ssl_keyfile": pki["server_key"]},
        scheme="https",
    )
    with EventClient("http", routes={"*": worker.url}, verify=pki["ca"]) as client:
        assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}


def test_verification_is_on_by_default(worker_factory, pki) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory(
        options={"ssl_certfile": pki["server_cert"], "ssl_keyfile": pki["server_key"]},
        scheme="https",
    )
    with (
        EventClient("http", routes={"*": worker.url}) as client,
        pytest.raises(PublishError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get("conformance.add", data={"x": 1, "y": 2}, timeout=5)


def test_mutual_tls(worker_factory, pki) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory(
        options={
            "ssl_certfile": pki["server_cert"],
            "ssl_keyfile": pki["server_key"],
            "ssl_ca_certs": pki["ca"],
        },
        scheme="https",
    )
    routes = {"*": worker.url}
    with (
        EventClient("http", routes=routes, verify=pki["ca"]) as client,
        pytest.raises(PublishError),
    ):
        client.get("conformance.add", data={"x": 1, "y": 2}, timeout=5)
    cert = [pki["client_cert"], pki["client_key"]]
    with EventClient("http", routes=routes, verify=pki["ca"], cert=cert) as client:
        assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}
    assert Path(pki["ca"]).exists()

"""Kafka security, checked statically (the embedded broker cannot do SASL or ACLs): every
client takes the SASL/TLS settings, half-configured security is refused at start, and the ACL
layout gives each service exactly what it needs."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path
from typing import ClassVar

import certifi
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from infra.broker import admin_config
from infra.security import kafka_acls, render_kafka_acls
from ostwatch.settings import BrokerSettings, SettingsError, StreamSettings, load
from producers.publisher import producer_config
from streams.app import create_app
from streams.kafka_compat import _connection_config

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "scram-s3cret-value"  # noqa: S105 - a planted value that must never be echoed


@pytest.fixture
def secured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> BrokerSettings:
    cafile = Path(certifi.where())  # a real CA bundle; nothing connects in these tests
    for name, value in {
        "BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": "SCRAM-SHA-512",
        "SASL_USERNAME": "ostwatch-worker",
        "SASL_PASSWORD": PASSWORD,
        "SSL_CAFILE": str(cafile),
    }.items():
        monkeypatch.setenv(f"OSTWATCH_BROKER_{name}", value)
    return load(BrokerSettings)


EXPECTED = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "ostwatch-worker",
    "sasl_plain_password": PASSWORD,
}


def test_kafka_python_producer_and_admin_take_the_security_settings(
    secured: BrokerSettings,
) -> None:
    security = secured.kafka_python_security()
    assert security.items() >= EXPECTED.items() and security["ssl_cafile"]
    for config in (
        producer_config("kafka-1:9093", security, client_id="x"),
        admin_config("kafka-1:9093", security, 5.0),
    ):
        assert config.items() >= security.items()


def test_the_end_offset_probe_copies_the_callers_security() -> None:
    class Consumer:
        config: ClassVar[dict[str, str]] = {
            "bootstrap_servers": "kafka-1:9093",
            "group_id": "g",
            **EXPECTED,
            "ssl_cafile": "/ca.pem",
        }

    copied = _connection_config(Consumer())  # type: ignore[arg-type]
    assert copied.items() >= EXPECTED.items() and "group_id" not in copied


def test_faust_worker_authenticates_with_scram_over_verified_tls(
    secured: BrokerSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiokafka

    # create_app wraps aiokafka's consumer class (kafka_compat.limit_fetch_wait); undo it after.
    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", aiokafka.AIOKafkaConsumer)
    app = create_app(
        secured,
        StreamSettings(),
        bootstrap=str(secured.bootstrap_servers),
        web_host="127.0.0.1",
        web_port=6066,
        data_dir=tmp_path,
    )
    # What Faust's aiokafka driver hands to every consumer and producer it builds.
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)
    assert {k: auth[k] for k in EXPECTED} == EXPECTED
    context = auth["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SECURITY_PROTOCOL": "SASL_SSL"}, "embedded broker (Tansu) speaks PLAINTEXT only"),
        (
            {"BOOTSTRAP_SERVERS": "k:9093", "SECURITY_PROTOCOL": "SASL_SSL"},
            "OSTWATCH_BROKER_SASL_MECHANISM is required",
        ),
        (
            {"BOOTSTRAP_SERVERS": "k:9093", "SASL_MECHANISM": "SCRAM-SHA-256"},
            "needs OSTWATCH_BROKER_SECURITY_PROTOCOL",
        ),
        (
            {
                "BOOTSTRAP_SERVERS": "k:9093",
                "SECURITY_PROTOCOL": "SASL_SSL",
                "SASL_MECHANISM": "SCRAM-SHA-256",
                "SASL_PASSWORD": PASSWORD,
            },
            "OSTWATCH_BROKER_SASL_USERNAME and OSTWATCH_BROKER_SASL_PASSWORD are required",
        ),
        (
            {"BOOTSTRAP_SERVERS": "k:9093", "SECURITY_PROTOCOL": "SSL", "SSL_CAFILE": "/no/ca"},
            "OSTWATCH_BROKER_SSL_CAFILE: no such file",
        ),
        (
            {"BOOTSTRAP_SERVERS": "k:9093", "SECURITY_PROTOCOL": "SASL_TLS"},
            "OSTWATCH_BROKER_SECURITY_PROTOCOL",
        ),
    ],
)
def test_half_configured_security_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(f"OSTWATCH_BROKER_{name}", value)
    with pytest.raises(SettingsError) as caught:
        load(BrokerSettings)
    assert named in str(caught.value)
    assert PASSWORD not in str(caught.value)


# Every place that builds a Kafka client, and how it receives the security settings. A new
# client must be added here, with the way it gets them, or this test fails.
CLIENT_SITES = {
    ("producers/publisher.py", "KafkaProducer"),  # producer_config(..., security)
    ("infra/broker.py", "KafkaAdminClient"),  # admin_config(..., security)
    ("streams/kafka_compat.py", "KafkaConsumer"),  # _connection_config of the caller's consumer
    ("infra/offset_check.py", "KafkaAdminClient"),  # admin_config(..., security)
    ("infra/offset_check.py", "KafkaConsumer"),  # **security (kafka_python_security)
    ("streams/app.py", "App"),  # broker_credentials=_credentials(broker)
}


def test_every_kafka_client_is_a_known_site() -> None:
    found = set()
    for package in ("ostwatch", "schemas", "producers", "streams", "sinks", "dashboards", "infra"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in {
                        "KafkaProducer",
                        "KafkaConsumer",
                        "KafkaAdminClient",
                        "AIOKafkaProducer",
                        "AIOKafkaConsumer",
                        "App",
                    }:
                        found.add((str(path.relative_to(ROOT)), name))
    assert found == CLIENT_SITES


# --- ACLs ---------------------------------------------------------------------------------------


def allowed(acls: list, principal: str) -> set[tuple[str, str, str]]:
    return {
        (acl.resource, acl.name, operation)
        for acl in acls
        if acl.principal == principal
        for operation in acl.operations
    }


def test_acl_layout_gives_each_service_only_what_it_needs() -> None:
    broker, stream = BrokerSettings(), StreamSettings()
    acls = kafka_acls(broker, stream)
    producer = allowed(acls, "User:ostwatch-producer")
    worker = allowed(acls, "User:ostwatch-worker")
    admin = allowed(acls, "User:ostwatch-admin")
    assert producer == {
        ("topic", broker.events_topic, "Write"),
        ("topic", broker.events_topic, "Describe"),
    }
    # only the worker reads events, and only it writes the derived topics
    for topic in (broker.events_topic,):
        assert ("topic", topic, "Read") in worker
    for topic in (broker.dead_letter_topic, broker.alerts_topic):
        assert ("topic", topic, "Write") in worker
        assert ("topic", topic, "Write") not in producer | admin
    assert ("group", stream.group_id, "Read") in worker
    assert not any(op in {"Write", "Read"} for _, _, op in admin)  # admin handles no data
    assert not any(op in {"All", "Alter", "Delete"} for _, _, op in producer | worker)
    # nobody else: three principals, and no rule on a topic outside ostwatch's names
    assert {acl.principal for acl in acls} == {
        "User:ostwatch-producer",
        "User:ostwatch-worker",
        "User:ostwatch-admin",
    }
    literal_topics = {
        acl.name for acl in acls if acl.resource == "topic" and acl.pattern == "literal"
    }
    assert literal_topics == {broker.events_topic, broker.dead_letter_topic, broker.alerts_topic}


def test_acls_follow_renamed_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTWATCH_BROKER_EVENTS_TOPIC", "bg.events")
    acls = kafka_acls(load(BrokerSettings), StreamSettings())
    assert ("topic", "bg.events", "Write") in allowed(acls, "User:ostwatch-producer")


def test_rendered_script_has_one_kafka_acls_command_per_rule() -> None:
    acls = kafka_acls(BrokerSettings(), StreamSettings())
    script = render_kafka_acls(acls, "kafka:9093", "admin.properties")
    commands = [line for line in script.splitlines() if line.startswith("kafka-acls.sh")]
    assert len(commands) == len(acls)
    assert all("--add --allow-principal User:ostwatch-" in c for c in commands)
    assert (
        "--allow-principal User:ostwatch-producer --operation Write --operation Describe "
        "--topic ostwatch.events --resource-pattern-type literal"
    ) in script
    assert "--cluster --resource-pattern-type literal" in script

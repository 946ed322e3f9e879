"""Payload encryption: AES-GCM, key id in the metadata, rotation, and what Temporal keeps.

The last test runs a real case on the dev server through the production wiring
(``app.context.connect``) and reads its history back with a client that has no
key: no customer name, e-mail address or amount may be readable there, nor in
the search attributes or memo.
"""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from app.codec import ENCODING, KEY_ID, EncryptionCodec, PayloadKeyError, PayloadKeys, resolve_keys
from app.context import connect
from app.services import CaseService
from domain.errors import DomainError
from tests.harness import INVOICES, terminate_cases
from worker import ContextFreeCodecRunner, build_worker, workflow_runner


def _payloads(node, path: str = ""):
    """Every payload of a history (JSON form): where, its encoding and its decoded bytes."""
    if isinstance(node, dict):
        if "metadata" in node and "data" in node and isinstance(node["data"], str):
            encoding = base64.b64decode(node["metadata"].get("encoding", ""))
            yield path, encoding, base64.b64decode(node["data"])
            return
        for key, value in node.items():
            yield from _payloads(value, f"{path}/{key}")
    elif isinstance(node, list):
        for value in node:
            yield from _payloads(value, path)


# The SDK's own bookkeeping of a local activity (type, attempt, times) and of a patch (its name, in the
# marker and in the TemporalChangeVersion search attribute): not ours to encrypt, and no data in it.
SDK_MARKER_DATA = ("/markerRecordedEventAttributes/details/data/payloads",
                   "/markerRecordedEventAttributes/details/patch-data/payloads",
                   "/upsertWorkflowSearchAttributesEventAttributes/searchAttributes/indexedFields/TemporalChangeVersion")


def entry(kid: str, size: int = 32) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(size)).decode()}"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_round_trip_hides_the_data_and_names_the_key():
    codec = EncryptionCodec(PayloadKeys.parse(entry("k1")))
    [sealed] = await codec.encode([plain("Acme GmbH <ap@acme.test> owes 1200.00 EUR")])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert b"Acme" not in sealed.data and b"1200.00" not in sealed.data
    [opened] = await codec.decode([sealed])
    assert json.loads(opened.data) == "Acme GmbH <ap@acme.test> owes 1200.00 EUR"
    [again] = await codec.encode([plain("Acme GmbH <ap@acme.test> owes 1200.00 EUR")])
    assert again.data != sealed.data  # a fresh nonce every time


async def test_tampering_is_detected():
    codec = EncryptionCodec(PayloadKeys.parse(f"{entry('k1')},{entry('k2')}"))
    [sealed] = await codec.encode([plain("1200.00")])
    flipped = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        await codec.decode([flipped])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k2"}, data=sealed.data)  # key id is bound
    with pytest.raises(InvalidTag):
        await codec.decode([relabelled])


async def test_rotation_new_key_first_old_keys_still_decrypt():
    k1, k2 = entry("k1"), entry("k2")
    [old] = await EncryptionCodec(PayloadKeys.parse(k1)).encode([plain("written under k1")])
    rotated = EncryptionCodec(PayloadKeys.parse(f"{k2},{k1}"))
    [new] = await rotated.encode([plain("written under k2")])
    assert new.metadata[KEY_ID] == b"k2"
    assert [json.loads(p.data) for p in await rotated.decode([old, new])] == ["written under k1", "written under k2"]
    retired = EncryptionCodec(PayloadKeys.parse(k2))
    with pytest.raises(ValueError, match="key id 'k1'.*add it back to COLLECTIONS_PAYLOAD_KEYS"):
        await retired.decode([old])


async def test_payloads_from_before_encryption_still_decode():
    codec = EncryptionCodec(PayloadKeys.parse(entry("k1")))
    [same] = await codec.decode([plain("written in clear")])
    assert json.loads(same.data) == "written in clear"


def test_contexts_are_answered_outside_the_sandbox_only_for_a_codec_that_ignores_them():
    """ContextFreeCodecRunner gives every payload the workflow's context: right only when the
    codec (and external storage) would do the same whatever the context."""
    from dataclasses import replace

    from temporalio.converter import WithSerializationContext
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

    from app.codec import encrypted_converter

    ours = encrypted_converter(PayloadKeys.parse(entry("k1")))
    assert isinstance(workflow_runner(True, ours), ContextFreeCodecRunner)
    assert isinstance(workflow_runner(True, ours).inner, SandboxedWorkflowRunner)
    assert isinstance(workflow_runner(True), SandboxedWorkflowRunner)

    class PerWorkflowKeys(EncryptionCodec, WithSerializationContext):
        def with_context(self, context):
            return self

    aware = replace(ours, payload_codec=PerWorkflowKeys(PayloadKeys.parse(entry("k1"))))
    assert not ContextFreeCodecRunner.applies(aware)
    assert isinstance(workflow_runner(True, aware), SandboxedWorkflowRunner)


def test_the_external_store_context_is_answered_outside_the_sandbox_too():
    """With no external storage (which ``applies`` requires) the SDK binds the store context to
    nothing, so the instance answers it without asking the sandboxed workflow."""
    from types import SimpleNamespace

    from worker import _WorkflowContextInstance

    class Sandboxed:  # the one question the runner must not forward
        def get_info(self):
            return SimpleNamespace(namespace="default", workflow_id="case-INV-1")

        def get_external_store_context(self, command_info):
            raise AssertionError("entered the sandbox for a store context")

    instance = _WorkflowContextInstance(Sandboxed())
    assert instance.get_external_store_context(None).target is None
    assert instance.get_serialization_context(None).workflow_id == "case-INV-1"


@pytest.mark.parametrize("text, match", [
    ("", "at least one key"),
    ("k1", "KEY_ID:BASE64_KEY"),
    ("k1:not base64!", "not valid base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "5 bytes"),
    (f"{entry('k1')},{entry('k1')}", "duplicate key id"),
    (f"bad id!:{base64.b64encode(os.urandom(32)).decode()}", "KEY_ID:BASE64_KEY"),
], ids=["empty", "no-key", "not-base64", "short-key", "duplicate-id", "bad-id"])  # stable ids: the keys are random
def test_bad_key_lists_are_refused_clearly(text, match):
    with pytest.raises(PayloadKeyError, match=match) as error:
        PayloadKeys.parse(text)
    assert isinstance(error.value, DomainError) and error.value.field == "COLLECTIONS_PAYLOAD_KEYS"


def test_keys_of_16_24_32_bytes_are_accepted():
    keys = PayloadKeys.parse(",".join(entry(f"k{n}", n) for n in (16, 24, 32)))
    assert keys.ids == ["k16", "k24", "k32"] and keys.current[0] == "k16"


def test_without_configured_keys_a_development_key_is_generated_once(tmp_path):
    first = resolve_keys(None, tmp_path)
    second = resolve_keys("", tmp_path)
    assert first == second and len(first.current[1]) == 32
    mode = stat.S_IMODE((tmp_path / "payload-keys").stat().st_mode)
    assert mode == 0o600
    configured = resolve_keys(entry("prod1"), tmp_path / "elsewhere")
    assert configured.ids == ["prod1"] and not (tmp_path / "elsewhere").exists()


async def test_temporal_keeps_no_personal_data_in_clear(dev_env, make_context, sqlite_url, smtp, tmp_path):
    target = dev_env.client.service_client.config.target_host
    key = entry("e2e1")
    context = make_context(sqlite_url, smtp_port=smtp.port, temporal_address=target, payload_keys=key,
                           data_dir=tmp_path)
    client = await connect(context.settings)  # the production wiring
    context._client = client
    service = CaseService(context)
    service.import_invoices(INVOICES)
    supervisor = context.actor("demo-supervisor")
    async with build_worker(client, context) as worker:
        # the serialization context is answered outside the sandbox: the codec ignores it
        assert isinstance(worker.config()["workflow_runner"], ContextFreeCodecRunner)
        await service.open_case("INV-1001")
        await service.pay("INV-1001", "200.00", "wire from Acme", supervisor)
        handle = client.get_workflow_handle(service._workflow_id("INV-1001"))
        blind = await Client.connect(target, data_converter=pydantic_data_converter)  # no key
        history = await blind.get_workflow_handle(handle.id).fetch_history()
        raw = json.dumps(history.to_json_dict())
        described = await blind.get_workflow_handle(handle.id).describe()
        readable = await handle.query("state")  # with the key, everything is there
        await terminate_cases(service)
    assert readable["customer"]["email"] == "ap@acme.test"
    payloads = list(_payloads(history.to_json_dict()))
    assert len(payloads) >= 5
    for where, encoding, data in payloads:
        assert encoding == ENCODING or where.endswith(SDK_MARKER_DATA), (where, encoding)
        for clear in (b"Acme GmbH", b"ap@acme.test", b"1200.00", b"1000.00", b"200.00", b"wire from Acme"):
            assert clear not in data, f"{clear!r} readable in the history"
    for clear in ("Acme GmbH", "ap@acme.test", "1200.00", "wire from Acme"):
        assert clear not in raw
    attributes = {k: str(v) for k, v in (described.raw_description.workflow_execution_info.search_attributes
                                          .indexed_fields.items())}
    assert not any("acme" in v.lower() or "1200" in v for v in attributes.values()), attributes
    assert not described.raw_description.workflow_execution_info.memo.fields

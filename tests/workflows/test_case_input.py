"""A worker holds one copy of each pinned policy, however many cases carry it in their input."""

from __future__ import annotations

import json
from uuid import uuid4

from temporalio.contrib.pydantic import pydantic_data_converter

from domain.policy import parse_policy
from tests.conftest import ROOT
from workflows.messages import CaseInput


def _policy():
    return parse_policy((ROOT / "policies" / "default.toml").read_text())


def _payload(start: CaseInput):
    return pydantic_data_converter.payload_converter.to_payloads([start])


def _decoded(payloads) -> CaseInput:
    return pydantic_data_converter.payload_converter.from_payloads(payloads, [CaseInput])[0]


def test_cases_decoded_with_the_same_policy_share_one_instance():
    policy = _policy()
    first, second = (_decoded(_payload(CaseInput(case_id=uuid4(), policy=policy))) for _ in range(2))
    assert first.case_id != second.case_id
    assert first.policy is second.policy
    assert first.policy == policy


def test_a_different_policy_under_the_same_version_is_not_taken_for_the_shared_one():
    policy = _policy()
    shared = _decoded(_payload(CaseInput(case_id=uuid4(), policy=policy))).policy
    edited = json.loads(CaseInput(case_id=uuid4(), policy=policy).model_dump_json())
    edited["policy"]["description"] = "edited under the same version"
    other = CaseInput.model_validate_json(json.dumps(edited))
    assert other.policy.version == shared.version
    assert other.policy is not shared
    assert other.policy.description == "edited under the same version"
    assert _decoded(_payload(CaseInput(case_id=uuid4(), policy=policy))).policy == policy

"""The API contract, fuzzed: schemathesis against a real running server (uvicorn, worker,
Temporal dev server, SMTP sink) with a supervisor's token, every check, a bounded number
of examples per operation. Whatever it finds (a 5xx, an undeclared status, a response off
its schema, a schema-valid request refused as malformed, a 405 without Allow...) fails.

`make test` runs each phase once (examples, coverage, then MAX_EXAMPLES generated requests per
operation). `make faults` also gives it a time budget (COLLECTIONS_FUZZ_SECONDS): schemathesis
then repeats the fuzzing phase with new data until the budget is spent.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import pytest

from tests.web.conftest import Web

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = int(os.environ.get("COLLECTIONS_FUZZ_EXAMPLES", "8"))
BUDGET = os.environ.get("COLLECTIONS_FUZZ_SECONDS")  # seconds of repeated fuzzing; unset: one pass


@pytest.mark.timeout(900)
async def test_the_api_keeps_its_openapi_contract_under_fuzzing(web: Web, tmp_path):
    await web.quiet()
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", f"{web.url}/openapi.json",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,coverage,fuzzing",
        "--workers", "1", "--seed", "14", "--request-timeout", "30",
        *(["--max-time", BUDGET] if BUDGET else []),
        "--header", f"Authorization: Bearer {web.tokens['supervisor']}",
        "--report", "junit", "--report-dir", str(tmp_path), "--no-color",
    ]
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    output, _ = await process.communicate()
    text = output.decode("utf-8", "replace")
    elapsed = time.monotonic() - started
    summary = [line for line in text.splitlines() if re.search(r"test cases|Operations|passed|failed|Checks", line)]
    print(f"schemathesis: {elapsed:.0f}s, {MAX_EXAMPLES} examples per operation, "
          f"{f'{BUDGET}s budget' if BUDGET else 'one pass'}\n" + "\n".join(summary[-12:]))
    assert process.returncode == 0, text[-20000:]
    assert re.search(r"\b[1-9][0-9]* passed", text), text[-3000:]  # it did test something

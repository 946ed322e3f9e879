"""4. Policy simulation: the backtest simulator (app/simulate.py) on the public ledger and on
a generated one (bench/ledger.py), against the Temporal engine measured in the same run.

* simulator vs Temporal, reduced public ledger (first 8 customers): both engines, same run;
  ratio = Temporal seconds / simulator seconds (how many times faster).
* simulator, full public ledger (2,466 invoices): seconds, target <= 5 s; baseline the
  Temporal engine's time for it extrapolated from its same-run invoices/s on the reduced
  ledger (noted as an estimate; docs/BACKTEST.md has measured full Temporal runs).
* simulator, generated ledger (100,000 invoices, 2 years; 10,000 with --quick): seconds,
  target <= 120 s; baseline the simulator's own invoices/s on the public ledger in this
  run, ratio = generated-ledger rate / public-ledger rate (1.0: it scales linearly).
"""

from __future__ import annotations

import time

from bench.common import OUT, ROOT, Result

REDUCED = 8


def _ledger():
    from tests.conftest import shared_ledger

    path = shared_ledger()
    if path is None:
        raise RuntimeError("the public ledger ar-ledger-2012-2013.csv is not on this machine")
    return path


async def run(quick: bool = False, profile: bool = False) -> list[Result]:
    from app.backtest import run_backtest
    from app.simulate import run_simulation
    from bench.ledger import generate

    policy = ROOT / "policies" / "default.toml"
    ledger = _ledger()
    results: list[Result] = []

    t0 = time.perf_counter()
    reference = await run_backtest(ledger, policy, "ibm-ar", REDUCED)
    temporal_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reduced = run_simulation(ledger, policy, "ibm-ar", REDUCED)
    reduced_s = time.perf_counter() - t0
    same = all(reference[k] == reduced[k] for k in ("cases_opened", "notices_by_level", "fees_charged",
                                                    "risk_grade_changes", "kpis_by_quarter"))
    results.append(Result(
        name="backtest simulator, reduced public ledger", value=round(reduced_s, 2), unit="s",
        baseline=round(temporal_s, 2), baseline_name="s, Temporal engine (time-skipping), same ledger",
        ratio=round(temporal_s / reduced_s, 1), target="faster", met=reduced_s < temporal_s,
        note=f"{reduced['invoices']} invoices, {reduced['cases_opened']} cases; reports identical: {same}",
        extra={"temporal_s": temporal_s, "simulate_s": reduced_s}))

    t0, c0 = time.perf_counter(), time.process_time()
    full = run_simulation(ledger, policy, "ibm-ar")
    full_s, full_cpu = time.perf_counter() - t0, time.process_time() - c0
    temporal_rate = reference["invoices"] / temporal_s
    estimate = full["invoices"] / temporal_rate
    results.append(Result(
        name="backtest simulator, full public ledger", value=round(full_s, 2), unit="s",
        baseline=round(estimate, 1), baseline_name="s, Temporal engine (estimated from its same-run rate)",
        ratio=round(estimate / full_s, 1), target="<= 5 s", met=full_s <= 5,
        note=f"CPU {full_cpu:.1f} s; {full['invoices']} invoices, {full['cases_opened']} cases, {full['notices_sent']} notices",
        extra={"simulate_s": full_s, "cpu_s": full_cpu}))

    invoices = 10_000 if quick else 100_000
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"ledger-{invoices}.csv"
    made = generate(path, invoices, 2)
    t0, c0 = time.perf_counter(), time.process_time()
    big = run_simulation(path, policy)
    big_s, big_cpu = time.perf_counter() - t0, time.process_time() - c0
    public_rate = full["invoices"] / full_s
    rate = big["invoices"] / big_s
    results.append(Result(
        name=f"backtest simulator, generated ledger ({invoices:,} invoices, 2 years)", value=round(big_s, 1),
        unit="s", baseline=round(public_rate, 1), baseline_name="invoices/s, simulator on the public ledger",
        ratio=round(rate / public_rate, 2), target="<= 120 s", met=big_s <= 120,
        note=f"CPU {big_cpu:.1f} s (wall/CPU: how loaded the machine was); "
             f"{made['customers']} customers; {big['cases_opened']} cases, {big['notices_sent']} notices, "
             f"{big['escalations']} escalations, {big['risk_grade_changes']} grade changes",
        extra={"simulate_s": big_s, "cpu_s": big_cpu, "invoices_per_s": rate, "ledger": made}))
    return results

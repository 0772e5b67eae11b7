#!/usr/bin/env python3
"""Writes N synthetic accounts as JSONL (interface.md format) for benchmarks.

Deterministic for a given --seed. The mix resembles a real batch: most accounts owe one to
three liabilities and get an intent to offset; some have earlier notices (already sent or
referred), offsets, reviews, late returns, stays or no address, so every decision path runs.

    python3 bench/gen_accounts.py --count 100000 --out /tmp/accounts-100k.jsonl
"""
import argparse
import json
import random

FIRST = ["Jordan", "Casey", "Renée", "Marcus", "Priya", "Tomasz", "Ifeoma", "Siobhan", "Hyun-woo", "Yusuf"]
LAST = ["Rivera", "O’Brien", "Núñez", "Kowalczyk", "Okafor", "Gallagher", "Park", "Haddad", "Dubois", "Ito"]
TOWNS = [("Hartford", "06103"), ("New Haven", "06510"), ("Stamford", "06901"), ("Waterbury", "06702"),
         ("Norwalk", "06850"), ("Danbury", "06810"), ("Bristol", "06010"), ("Meriden", "06450")]


def money(rng, lo, hi):
    return f"{rng.randint(lo * 100, hi * 100) / 100:.2f}"


def account(i, rng):
    town, zip5 = rng.choice(TOWNS)
    consent = rng.random() < 0.3
    acct = {
        "account_id": f"CT-{i:07d}",
        "taxpayer": {"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                     "spouse_name": rng.choice([None, "Alex " + rng.choice(LAST)]),
                     "tin_last4": f"{rng.randint(0, 9999):04d}"},
        "address": None if rng.random() < 0.02 else {
            "line1": f"{rng.randint(1, 999)} Main St", "line2": None, "city": town, "state": "CT",
            "zip": f"{zip5}-{rng.randint(1000, 9999)}" if rng.random() < 0.7 else zip5, "country": "US"},
        "email": f"user{i}@example.org" if consent or rng.random() < 0.2 else None,
        "electronic_delivery": consent,
        "language": "en",
        "balance_as_of": "2026-11-01",
        "liabilities": [],
    }
    for n in range(rng.choice([1, 1, 2, 2, 3])):
        year = rng.randint(2014, 2024)
        acct["liabilities"].append({
            "id": f"L{n + 1}", "tax_type": "individual_income", "period": str(year),
            "due_date": f"{year + 1}-04-15", "tax": money(rng, 0, 4000), "penalty": money(rng, 0, 400),
            "interest": money(rng, 0, 900), "enforceable": rng.random() > 0.05,
            "judgment": rng.random() < 0.05})
    roll = rng.random()
    if roll < 0.25:
        acct["notices"] = [{"kind": "intent_to_offset", "mailed_on": rng.choice(["2025-06-02", "2026-08-03", "2026-11-02"]),
                            "liability_ids": ["L1"], "undeliverable": rng.random() < 0.1}]
    if 0.25 <= roll < 0.40:
        refund = rng.randint(200, 4000)
        before = rng.randint(100, 5000)
        offset = min(refund, rng.randint(100, 4000))
        acct["offsets"] = [{"id": "F1", "source": "federal", "tax_year": "2025", "offset_on": "2026-03-10",
                            "refund_amount": f"{refund}.00", "offset_amount": f"{offset}.00",
                            "balance_before": f"{before}.00", "joint_return": rng.random() < 0.3 and acct["taxpayer"]["spouse_name"] is not None,
                            "posted_on": "2026-04-20", "agency": None}]
    if 0.40 <= roll < 0.48:
        outcome = rng.choice(["pending", "upheld", "reduced", "reversed"])
        acct["reviews"] = [{"id": "R1", "liability_ids": ["L1"], "requested_on": "2026-07-01",
                            "decided_on": None if outcome == "pending" else "2026-08-15", "outcome": outcome,
                            "reduced_balance": "100.00" if outcome == "reduced" else None}]
    if 0.48 <= roll < 0.52:
        acct["late_returns"] = [{"id": "LR1", "period": "2019", "filed_on": rng.choice(["2022-06-01", "2026-10-01"]),
                                 "due_date": "2020-07-15", "extended_due_date": None, "tax_due": "0.00",
                                 "offsets_applied": money(rng, 0, 2000), "excess_payments": money(rng, 0, 500)}]
    if 0.52 <= roll < 0.55:
        acct["bankruptcy"] = {"case_number": f"26-{i % 100000:05d}", "court": "D. Conn.", "chapter": 13,
                              "filed_on": "2026-09-01", "stay_ended_on": None}
    return acct


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as out:
        for i in range(1, args.count + 1):
            out.write(json.dumps(account(i, rng), ensure_ascii=False, separators=(",", ":")))
            out.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes N synthetic accounts as JSONL (interface.md format) for benchmarks.

Deterministic for a given --seed. The mix resembles a real batch: most accounts owe one to
three liabilities and get an intent to offset; some have earlier notices (already sent or
referred), offsets, reviews, late returns, stays or no address, so every decision path runs.
It also produces what the Treasury rules read: non-income tax types (sales and use,
withholding), federal offsets not posted by the balance date, partial reviews of notices
covering several liabilities, joint returns, reissues after an undeliverable notice, and
`referrals[]` records (what TOP holds: the full amount, an older higher amount, part of a
notice, or deleted `0.00`).

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


def tax_type(rng):
    """Mostly income tax; some sales and use or withholding tax (never referred)."""
    roll = rng.random()
    return "sales_use" if roll < 0.08 else "withholding" if roll < 0.12 else "individual_income"


def balance(liability):
    return sum(round(float(liability[k]) * 100) for k in ("tax", "penalty", "interest"))


def referrals(acct, covered, rng):
    """What TOP holds for a delivered notice: all of it or part, at the recorded amount, an
    older higher amount (a decrease is due), or deleted (0.00)."""
    notice_key = f"{acct['account_id']}/intent_to_offset/{'+'.join(sorted(covered))}"
    held = covered if rng.random() < 0.7 else covered[:1]
    cents = sum(balance(l) for l in acct["liabilities"] if l["id"] in held)
    kind = rng.random()
    if kind < 0.15:
        cents = 0
    elif kind < 0.45:
        cents += rng.randint(100, 50000)
    return [{"notice_key": notice_key, "liability_ids": sorted(held), "referred_on": "2026-10-05",
             "amount": f"{cents // 100}.{cents % 100:02d}", "updated_on": None}]


def unposted_offset(acct, rng):
    """A federal offset whose payment is not in the balances yet (held referrals, frozen updates)."""
    spouse = acct["taxpayer"]["spouse_name"]
    return {"id": "F9", "source": "federal", "tax_year": "2025", "offset_on": "2026-11-10",
            "refund_amount": "1500.00", "offset_amount": money(rng, 100, 1500), "balance_before": money(rng, 100, 3000),
            "joint_return": spouse is not None and rng.random() < 0.5,
            "posted_on": rng.choice([None, "2026-11-20"]), "agency": None}


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
            "id": f"L{n + 1}", "tax_type": tax_type(rng), "period": str(year),
            "due_date": f"{year + 1}-04-15", "tax": money(rng, 0, 4000), "penalty": money(rng, 0, 400),
            "interest": money(rng, 0, 900), "enforceable": rng.random() > 0.05,
            "judgment": rng.random() < 0.05})
    ids = [l["id"] for l in acct["liabilities"]]
    roll = rng.random()
    if roll < 0.25:
        covered = ids if rng.random() < 0.5 else ["L1"]
        mailed = rng.choice(["2025-06-02", "2026-08-03", "2026-11-02"])
        undeliverable = rng.random() < 0.1
        acct["notices"] = [{"kind": "intent_to_offset", "mailed_on": mailed,
                            "liability_ids": covered, "undeliverable": undeliverable}]
        if undeliverable and rng.random() < 0.5:
            # Reissued under the same key and delivered this time.
            acct["notices"].append({"kind": "intent_to_offset", "mailed_on": "2026-09-08",
                                    "liability_ids": covered, "undeliverable": False})
            mailed, undeliverable = "2026-09-08", False
        if not undeliverable and mailed != "2026-11-02" and rng.random() < 0.6:
            acct["referrals"] = referrals(acct, covered, rng)
        if len(covered) > 1 and rng.random() < 0.3:
            # A review of one liability of a notice that covered several.
            outcome = rng.choice(["pending", "upheld", "reduced", "reversed"])
            acct["reviews"] = [{"id": "R1", "liability_ids": [covered[-1]], "requested_on": "2026-09-01",
                                "decided_on": None if outcome == "pending" else "2026-11-20", "outcome": outcome,
                                "reduced_balance": money(rng, 0, 1500) if outcome == "reduced" else None}]
        if rng.random() < 0.1:
            acct["offsets"] = [unposted_offset(acct, rng)]
        if rng.random() < 0.05:
            acct["bankruptcy"] = {"case_number": f"26-{i % 100000:05d}", "court": "D. Conn.", "chapter": 7,
                                  "filed_on": "2026-10-01", "stay_ended_on": rng.choice([None, "2026-11-15"])}
        if rng.random() < 0.05:
            # Paid since (or down to a few dollars): a delete when TOP holds it.
            for liability in acct["liabilities"]:
                liability.update(tax=rng.choice(["0.00", "9.99"]), penalty="0.00", interest="0.00")
    if 0.25 <= roll < 0.40:
        refund = rng.randint(200, 4000)
        before = rng.randint(100, 5000)
        offset = min(refund, rng.randint(100, 4000))
        acct["offsets"] = [{"id": "F1", "source": "federal", "tax_year": "2025", "offset_on": "2026-03-10",
                            "refund_amount": f"{refund}.00", "offset_amount": f"{offset}.00",
                            "balance_before": f"{before}.00", "joint_return": rng.random() < 0.3 and acct["taxpayer"]["spouse_name"] is not None,
                            "posted_on": rng.choice(["2026-04-20", "2026-04-20", "2026-11-20", None]), "agency": None}]
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

"""Refund policy: reads {amount, customer_tier, reason} on stdin, prints the decision as JSON."""

import json
import sys

AUTO_LIMITS = {"standard": 50.0, "silver": 100.0, "gold": 250.0, "platinum": 500.0}
HARD_LIMIT = 5000.0
FRAUD_SIGNALS = ("fraud", "chargeback", "stolen", "unauthorized", "unauthorised", "scam")
SERVICE_FAILURES = (
    "damaged",
    "defective",
    "broken",
    "wrong item",
    "not as described",
    "never arrived",
    "never received",
    "charged twice",
    "double charged",
    "duplicate charge",
    "outage",
)


def decide(amount: float, tier: str, reason: str) -> tuple[str, str, list[str]]:
    limit = AUTO_LIMITS[tier]
    text = reason.lower()
    fraud = [w for w in FRAUD_SIGNALS if w in text]
    service = [w for w in SERVICE_FAILURES if w in text]
    if amount > HARD_LIMIT:
        return (
            "deny",
            "high",
            [f"amount {amount:.2f} exceeds the hard limit of {HARD_LIMIT:.2f}; finance handles it"],
        )
    if fraud:
        return "review", "high", [f"reason mentions {', '.join(fraud)}: a person checks the account first"]
    if amount <= limit:
        reasons = [f"amount {amount:.2f} is within the {tier} limit of {limit:.2f}"]
        if service:
            reasons.append(f"reason reports a service failure ({', '.join(service)})")
        return "auto", "low", reasons
    risk = "medium" if amount <= 4 * limit else "high"
    return "review", risk, [f"amount {amount:.2f} exceeds the {tier} limit of {limit:.2f}"]


def main() -> int:
    try:
        data = json.load(sys.stdin)
        amount = float(data["amount"])
        tier = data["customer_tier"]
        reason = str(data["reason"])
        limit = AUTO_LIMITS[tier]
    except (ValueError, KeyError, TypeError) as e:
        sys.stderr.write(f"refund-policy: bad input: {e!r}\n")
        return 2
    decision, risk, reasons = decide(amount, tier, reason)
    json.dump({"decision": decision, "risk": risk, "max_auto_amount": limit, "reasons": reasons}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

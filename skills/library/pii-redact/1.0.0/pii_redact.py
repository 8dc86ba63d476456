"""PII redaction: reads {text} on stdin, prints {text, counts, total} as JSON."""

import json
import re
import sys

CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(
    r"(?<![\w+(])"  # not in the middle of a word or a longer number
    r"(?:\+\d{8,15}"  # +447911123456
    r"|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4})"  # +1 (415) 555-0123
    r"(?!\w)"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact(text: str) -> tuple[str, dict[str, int]]:
    counts = {"email": 0, "phone": 0, "card": 0}

    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group())
        if not luhn_ok(digits):
            return m.group()
        counts["card"] += 1
        return f"[CARD ****{digits[-4:]}]"

    def email(m: re.Match[str]) -> str:
        counts["email"] += 1
        return "[EMAIL]"

    def phone(m: re.Match[str]) -> str:
        found = m.group()
        digits = len(re.sub(r"\D", "", found))
        prefixed = found.startswith(("+", "("))
        if not (9 <= digits <= 15 or (prefixed and 7 <= digits <= 15)):
            return found
        counts["phone"] += 1
        return "[PHONE]"

    text = CARD.sub(card, text)
    text = EMAIL.sub(email, text)
    text = PHONE.sub(phone, text)
    return text, counts


def main() -> int:
    try:
        text = json.load(sys.stdin)["text"]
    except (ValueError, KeyError, TypeError) as e:
        sys.stderr.write(f"pii-redact: bad input: {e!r}\n")
        return 2
    if not isinstance(text, str):
        sys.stderr.write("pii-redact: bad input: text must be a string\n")
        return 2
    masked, counts = redact(text)
    json.dump({"text": masked, "counts": counts, "total": sum(counts.values())}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the bounded parser of storage documents costs over a plain ``json.loads``.

``catalogstore.bounded_json.parse_document`` reads every ``.artifact.json`` that
``reindex`` and ``verify`` see (and every page cursor). Timed round robin against
``json.loads`` of the same bytes, in the same run:

- a typical ``.artifact.json`` (the 3 keys of the other benchmarks plus 47 more, ~1 KiB);
- a large, valid one (a 1 MiB text value, and 100,000 small keys);
- hostile ones, refused: a 2,000-deep array, a 5,000-digit integer, 16 MiB of ``[``,
  an unterminated string of escaped quotes
  (``json.loads`` raises at once on the first two; on the third it recurses until
  ``RecursionError``).

Bar (issue 12): a typical document costs at most 3x ``json.loads`` (reindex of a large
tree is bound by listing and hashing, not by this); the hostile ones are refused in
at most 2 s.

    .venv/bin/python bench/bench_bounded_json.py [--quick] [--repeat N]
"""

from __future__ import annotations

import json
import sys
from typing import Any

from _common import (
    exit_status,
    make_parser,
    measure,
    print_header,
    print_table,
    report_bar,
    sample_meta,
)


def _refused(parse: Any, doc: bytes) -> None:
    from catalogstore.errors import InvalidDocumentError

    try:
        parse(doc)
    except (InvalidDocumentError, RecursionError, ValueError):
        return
    raise SystemExit("a hostile document was accepted")


def main() -> int:
    args = make_parser(__doc__).parse_args()
    repeat = args.repeat or (5 if args.quick else 20)
    from catalogstore.bounded_json import parse_document

    print_header("bounded JSON parser vs json.loads")
    typical = json.dumps({**sample_meta(7), **{f"key{i}": f"value-{i}" for i in range(47)}}
                         ).encode()
    large_value = json.dumps({"notes": "x" * (1 << 20), "model": "xgb"}).encode()
    many_keys = json.dumps({f"k{i}": str(i) for i in range(100_000)}).encode()
    loops = 200 if args.quick else 2000
    cases = {
        f"parse_document, typical ({len(typical)} B) x{loops}":
            lambda _: [parse_document(typical) for _ in range(loops)],
        f"json.loads, typical x{loops}": lambda _: [json.loads(typical) for _ in range(loops)],
        "parse_document, 1 MiB value": lambda _: parse_document(large_value),
        "json.loads, 1 MiB value": lambda _: json.loads(large_value),
        "parse_document, 100,000 keys": lambda _: parse_document(many_keys),
        "json.loads, 100,000 keys": lambda _: json.loads(many_keys),
    }
    timings = list(measure(cases, repeat=repeat, warmup=2, collect=False).values())
    print_table("valid documents", timings)
    hostile = {"2,000-deep array": b"[" * 2000 + b"]" * 2000,
               "5,000-digit integer": b'{"k": ' + b"7" * 5000 + b"}",
               "16 MiB of [ (refused)": b"[" * ((16 << 20) - 1),
               "16 MiB of [[] (refused)": b"[[]" * ((16 << 20) // 3),
               # An unterminated string of escaped quotes (quadratic before the fix).
               'unclosed 16 MiB of \\"': b'{"k": "' + b'\\"' * ((16 << 20) // 2 - 64) + b"[" * 70}
    refusals = list(measure({name: (lambda _, d=doc: _refused(parse_document, d))
                             for name, doc in hostile.items()},
                            repeat=max(3, repeat // 4), warmup=1).values())
    print_table("hostile documents, refused by parse_document", refusals)
    report_bar("bounded-json-typical", timings[0].median / timings[1].median, 3,
               "json.loads's time on a typical .artifact.json", at_most=True)
    report_bar("bounded-json-hostile", max(t.median for t in refusals), 2,
               "to refuse the slowest hostile document", at_most=True, unit="s")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())

"""Did a variant decode the same tokens as the reference? (issue 15's graph experiments)

    python3 scripts/gpu/compare_ids.py REFERENCE.json VARIANT.json [...]

For each row of each bench_speed.py result: its token ids against the reference's same row,
and whether all its requests agreed (token_ids_all_same). A CUDA graph replayed with another
adapter's weights, or none, shows here as an adapter row equal to the base row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text(encoding="utf-8"))["timing"]["rows"]


def main(reference: Path, variants: list[Path]) -> None:
    ref = rows(reference)
    for path in variants:
        try:
            got = rows(path)
        except (OSError, KeyError, ValueError) as exc:
            print(f"{path.name}: no rows ({exc})")
            continue
        for row, data in got.items():
            same_ref = ref.get(row, {}).get("token_ids") == data.get("token_ids")
            base_like = row != "ours_base" and data.get("token_ids") == got.get(
                "ours_base", {}
            ).get("token_ids")
            print(
                f"{path.name} {row}: same as reference {same_ref}, "
                f"all requests same {data.get('token_ids_all_same')}, "
                f"equal to ours_base {base_like}"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])

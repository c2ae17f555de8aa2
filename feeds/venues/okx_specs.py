"""Contract specifications (OKX `ctVal`), from a shipped snapshot or the venue's own response."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from feeds.model import ParseError
from feeds.venues.parsing import need, positive, text

DEFAULT_OKX_SWAPS = Path(__file__).parent / "data" / "okx_instruments_swap.json"


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What one contract is worth: `ct_val` units of `ct_val_ccy` (base coin when linear)."""

    inst_id: str
    ct_val: Decimal
    ct_val_ccy: str
    ct_type: str

    @property
    def linear(self) -> bool:
        return self.ct_type == "linear"


def parse_okx_instruments(payload: Any, where: str = "instruments") -> dict[str, ContractSpec]:
    """Index an OKX `/api/v5/public/instruments` response by instId.

    {"code": "0", "msg": "",
     "data": [{"instId": "BTC-USDT-SWAP",
               "ctVal": "0.01", "ctValCcy": "BTC",      # one contract = 0.01 BTC
               "ctType": "linear", ...}]}               # inverse: ctValCcy is USD
    """
    code = need(payload, "code", where)
    if str(code) != "0":
        raise ParseError(f"{where}: OKX error response, code {code!r}")
    rows = need(payload, "data", where)
    if not isinstance(rows, list):
        raise ParseError(f"{where}: 'data' must be a list")
    specs: dict[str, ContractSpec] = {}
    for i, row in enumerate(rows):
        at = f"{where}: data[{i}]"
        inst_id = text(need(row, "instId", at), f"{at}.instId")
        specs[inst_id] = ContractSpec(
            inst_id=inst_id,
            ct_val=positive(need(row, "ctVal", at), f"{inst_id}.ctVal"),
            ct_val_ccy=str(row.get("ctValCcy", "")),
            ct_type=str(row.get("ctType", "linear")) or "linear",
        )
    return specs


def read_okx_instruments(path: str | Path) -> dict[str, ContractSpec]:
    """Read one instruments file; every problem is a ParseError naming the file."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ParseError(f"{path}: cannot read instruments file: {exc.strerror}") from None
    except ValueError as exc:
        raise ParseError(f"{path}: not JSON: {exc}") from None
    return parse_okx_instruments(payload, where=str(path))


def load_okx_instruments(path: str | Path | None = None) -> dict[str, ContractSpec]:
    """Return the shipped snapshot, overridden per instId by the user's file when given."""
    specs = read_okx_instruments(DEFAULT_OKX_SWAPS)
    if path is not None:
        specs.update(read_okx_instruments(path))
    return specs

"""OKX v5: the liquidation socket (stream.py); ctVal, funding and OI over REST (rest.py)."""

from feeds.venues.okx.rest import (
    DEFAULT_OKX_SWAPS,
    DEFAULT_REST_URL,
    EXCHANGE,
    FUNDING,
    INSTRUMENTS_PATH,
    ContractSpec,
    contract_specs,
    fetch_funding,
    fetch_instruments,
    instrument_rows,
    load_okx_instruments,
    parse_funding_rate,
    parse_okx_instruments,
    parse_open_interest,
    read_okx_instruments,
)
from feeds.venues.okx.stream import (
    CHANNEL,
    DEFAULT_URL,
    INST_TYPES,
    OKX_IDLE_LIMIT_S,
    SAMPLED,
    OkxFeed,
    UnknownInstrument,
    decoder,
    make_feeds,
    okx_feed,
    parse_detail,
    parse_message,
    position_side,
)

__all__ = [
    "CHANNEL", "DEFAULT_OKX_SWAPS", "DEFAULT_REST_URL", "DEFAULT_URL", "EXCHANGE", "FUNDING",
    "INSTRUMENTS_PATH", "INST_TYPES", "OKX_IDLE_LIMIT_S", "SAMPLED", "ContractSpec", "OkxFeed",
    "UnknownInstrument", "contract_specs", "decoder", "fetch_funding", "fetch_instruments",
    "instrument_rows", "load_okx_instruments", "make_feeds", "okx_feed", "parse_detail",
    "parse_funding_rate", "parse_message", "parse_okx_instruments", "parse_open_interest",
    "position_side", "read_okx_instruments",
]

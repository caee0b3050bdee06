"""``GET /history``: the predecessor's candles route (``tickfleet.history.service``).

A plain ``def``: the bars come from SQL and Kite through a synchronous client, so FastAPI
runs it in its thread pool, off the event loop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, status

from producers.api.deps import ServicesDep
from tickfleet.history.kite_source import (
    KiteRejectedError,
    KiteUnavailableError,
    UnknownAccountError,
)
from tickfleet.history.service import (
    HistoryRequest,
    HistoryRequestError,
    UnknownInstrumentError,
)
from tickfleet.kite.candles import Interval, RangeTooLargeError

router = APIRouter(tags=["history"])
_ZONED = "ISO 8601; naive means the market's timezone"

_ERRORS: dict[type[Exception], int] = {
    HistoryRequestError: status.HTTP_400_BAD_REQUEST,
    UnknownAccountError: status.HTTP_400_BAD_REQUEST,
    UnknownInstrumentError: status.HTTP_404_NOT_FOUND,
    RangeTooLargeError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    KiteUnavailableError: status.HTTP_502_BAD_GATEWAY,
    KiteRejectedError: status.HTTP_502_BAD_GATEWAY,
}


@router.get(
    "/history",
    responses={code: {"description": "see the message"} for code in (400, 404, 422, 502)},
)
def history(
    services: ServicesDep,
    instrument_token: Annotated[int, Query(ge=0, le=2**32 - 1)],
    from_ts: Annotated[datetime, Query(description=_ZONED)],
    to_ts: Annotated[datetime, Query(description=_ZONED)],
    interval: Interval = Interval.MINUTE,
    account_id: str | None = Query(None, max_length=64, description="who asks Kite"),
    continuous: bool = False,
    oi: bool = False,
) -> dict[str, Any]:
    """Candles of one instrument: the fleet's own bars, Kite's before them."""
    tz = ZoneInfo(services.settings.market_timezone)
    request = HistoryRequest(
        instrument_token,
        from_ts if from_ts.tzinfo else from_ts.replace(tzinfo=tz),
        to_ts if to_ts.tzinfo else to_ts.replace(tzinfo=tz),
        interval,
        account_id,
        continuous,
        oi,
    )
    try:
        return services.history().answer(request)
    except tuple(_ERRORS) as exc:
        code = next(code for kind, code in _ERRORS.items() if isinstance(exc, kind))
        raise HTTPException(code, str(exc)) from None

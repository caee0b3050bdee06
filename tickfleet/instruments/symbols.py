"""NSE trading symbols of index options, so simulated contracts read like real ones.

Monthly contracts spell the month (``NIFTY25NOV24000CE``); weekly ones use a one-letter
month code and the day (``NIFTY25N0424000CE``), the code being 1-9 for January to
September and O, N, D for October to December.
"""

from __future__ import annotations

from datetime import date

_WEEKLY_MONTH_CODES = "123456789OND"
# Spelled out rather than strftime("%b"), which follows the process locale.
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _strike_text(strike: float) -> str:
    return str(int(strike)) if float(strike).is_integer() else repr(float(strike))


def monthly_option_symbol(root: str, expiry: date, strike: float, option_type: str) -> str:
    month = _MONTHS[expiry.month - 1]
    return f"{root}{expiry:%y}{month}{_strike_text(strike)}{option_type}"


def weekly_option_symbol(root: str, expiry: date, strike: float, option_type: str) -> str:
    code = _WEEKLY_MONTH_CODES[expiry.month - 1]
    return f"{root}{expiry:%y}{code}{expiry:%d}{_strike_text(strike)}{option_type}"

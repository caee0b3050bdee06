"""A simulated chain's books as its full-mode ticks' ``depth`` and totals, a chain at once.

The live path publishes Kite's depth as ``{"buy": [five {"quantity", "price", "orders"}],
"sell": [...]}`` with ``total_buy_quantity`` and ``total_sell_quantity`` beside it
(``tickfleet.ticks.payloads``); the simulated one must publish the same, so a consumer sees one
shape. Built as Python dicts and serialised tick by tick, ten levels cost 2.8 µs a tick,
as much again as everything else a simulated tick costs on the publish path. So the whole
chain's books are written into one byte array, a row a contract: each number sits
right-aligned in whole 4-byte words (JSON allows the spaces before it), taken as ``uint32``
from tables of words such as ``"  65"``, ``"0065"``, ``".05,"``, ``" 3},"``; a chain tick is
a few array operations however many levels it has, each tick takes its row as ready bytes
(``OptionPayload.tick(book=...)`` joins it to the rest), and a row's quantities, orders
and totals are written again only when the books' shapes change (``ChainDepth``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Final, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from tickfleet.market.depth import LEVELS, ChainDepth
from tickfleet.market.layout import IntArray
from tickfleet.subscriptions.store import Mode
from tickfleet.ticks.payloads import BookJson

Words = NDArray[np.uint32]

FULL: Final = Mode.FULL.value
LTP: Final = Mode.LTP.value

_WORD = 4
_GROUP = 10_000  # a word holds four digits
_BLANK = 2 * _GROUP  # the index of the word of four spaces
_LEVEL_HEAD = b'{"quantity":'
_PRICE_KEY = b',  "price": '
_ORDERS_KEY = b'  "orders": '
_ROW_HEAD = b'"depth":{"buy":['
_SIDES = b', "sell": [ '
_BUY_TOTAL = b'},"total_buy_quantity": '
_SELL_TOTAL = b',"total_sell_quantity": '


class _Tables(NamedTuple):
    digits: Words  # "0000".."9999", "   0".."9999", "    "
    cents: Words  # ".00,".."99,"
    orders: Words  # " 0},".."99},", then " 0}]".."99}]" (a side's last level)
    last_level: IntArray  # added to a level's orders: 100 where a side's list closes


@cache
def _tables() -> _Tables:
    """The words, made on first use (never at import)."""
    zeroed = b"".join(b"%04d" % i for i in range(_GROUP))
    spaced = b"".join(b"%4d" % i for i in range(_GROUP))
    cents = b"".join(b".%02d," % i for i in range(100))
    orders = b"".join(b"%2d}," % i for i in range(100)) + b"".join(b"%2d}]" % i for i in range(100))
    return _Tables(
        np.frombuffer(zeroed + spaced + b"    ", dtype=np.uint32),
        np.frombuffer(cents, dtype=np.uint32),
        np.frombuffer(orders, dtype=np.uint32),
        np.array(([0] * (LEVELS - 1) + [100]) * 2, dtype=np.int64),
    )


def _groups(values: IntArray) -> int:
    """Words needed for the widest of ``values`` (non-negative)."""
    widest = int(values.max()) if values.size else 0
    return max(1, -(-len(str(widest)) // 4))


def _number_words(values: IntArray, groups: int, digits: Words) -> list[Words]:
    """Each value right-aligned in ``groups`` words, most significant word first."""
    if groups == 1:
        return [digits.take(values + _GROUP, mode="clip")]  # spaced
    words = []
    for j in reversed(range(1, groups)):
        above = values // _GROUP**j
        chunk = above - _GROUP * (above // _GROUP)
        index = np.where(above == 0, _BLANK, chunk + _GROUP * (above < _GROUP))
        words.append(digits.take(index))
    top = values // _GROUP
    words.append(digits.take(values - _GROUP * top + _GROUP * (top == 0)))
    return words


class _Shape(NamedTuple):
    """How many words a chain's numbers need: quantities, rupees, totals."""

    rows: int
    quantity: int
    price: int
    total: int


class _Layout(NamedTuple):
    """Where the words of rows of one ``_Shape`` go."""

    template: bytes
    quantity: int  # the first word of each field in a level
    price: int
    cents: int
    orders: int
    level_words: int
    side_words: int  # from a side's first level to the other side's
    buy_total: int  # the first word of each total in a row
    sell_total: int

    @classmethod
    def of(cls, shape: _Shape) -> _Layout:
        quantity = len(_LEVEL_HEAD) // _WORD
        price = quantity + shape.quantity + len(_PRICE_KEY) // _WORD
        cents = price + shape.price
        orders = cents + 1 + len(_ORDERS_KEY) // _WORD
        level = (
            _LEVEL_HEAD
            + b" " * (_WORD * shape.quantity)
            + _PRICE_KEY
            + b" " * (_WORD * (shape.price + 1))
            + _ORDERS_KEY
            + b" " * _WORD
        )
        side = level * LEVELS
        total = b" " * (_WORD * shape.total)
        book = _ROW_HEAD + side + _SIDES + side
        template = book + _BUY_TOTAL + total + _SELL_TOTAL + total
        buy_total = (len(book) + len(_BUY_TOTAL)) // _WORD
        sell_total = buy_total + shape.total + len(_SELL_TOTAL) // _WORD
        side_words = (len(side) + len(_SIDES)) // _WORD
        level_words = len(level) // _WORD
        return cls(
            template, quantity, price, cents, orders, level_words, side_words, buy_total, sell_total
        )


class BookWriter:
    """Writes chains' books as JSON members; keeps one buffer between chains of one shape
    (the template's words stay, each chain writes only its numbers)."""

    def __init__(self) -> None:
        self._shape: _Shape | None = None
        self._rows: NDArray[np.uint8] = np.zeros((0, 0), dtype=np.uint8)
        self._layout = _Layout.of(_Shape(0, 1, 1, 1))
        self._sizes: IntArray | None = None  # the quantities last written
        self._words, self._levels = self._rows.view(np.uint32), self._rows.view(np.uint32)
        self._work: list[IntArray] = [np.empty((0, 0), dtype=np.int64)]

    def rows(self, depth: ChainDepth) -> list[BookJson]:
        """``"depth":{...},"total_buy_quantity":...,"total_sell_quantity":...`` of each book
        of ``depth``, in its order. Quantities, orders and totals are written only when they
        are not the arrays written last (``ChainDepth`` hands the same ones while they stay)."""
        tables, work = _tables(), self._work_for(depth.ticks.shape)
        paise, rupees, cents = work
        np.multiply(depth.ticks, round(depth.tick_size * 100), out=paise)
        np.floor_divide(paise, 100, out=rupees)
        np.multiply(rupees, -100, out=cents)
        cents += paise
        shape = self._shape_of(depth, rupees, self._sizes is not depth.quantities)
        words, levels = self._views(shape)  # a buffer of a new shape has no sizes written
        self._put(levels, self._layout.price, _number_words(rupees, shape.price, tables.digits))
        self._put(levels, self._layout.cents, [tables.cents.take(cents, mode="clip")])
        if self._sizes is not depth.quantities:
            self._write_sizes(depth, shape, words, levels)
        rows = self._rows
        listed: list[bytes] = rows.view(f"S{rows.shape[1]}").ravel().tolist()
        return listed

    def _work_for(self, shape: tuple[int, ...]) -> list[IntArray]:
        """Three arrays of ``shape`` for the prices' arithmetic, kept between chains (fresh
        ones each chain tick cost more than the arithmetic on a loaded cache)."""
        if self._work[0].shape != shape:
            self._work = [np.empty(shape, dtype=np.int64) for _ in range(3)]
        return self._work

    def _shape_of(self, depth: ChainDepth, rupees: IntArray, sizes: bool) -> _Shape:
        """The words ``depth`` needs (those of its sizes as last written, unless ``sizes``),
        never fewer than the buffer has for the same rows: a number that narrows keeps its
        width, so a chain whose widest total crosses 9,999 and back is not laid out again."""
        price, known = _groups(rupees), self._shape
        if known is None or known.rows != len(depth.buy):
            known = _Shape(len(depth.buy), 1, 1, 1)
        quantity, total = known.quantity, known.total
        if sizes:
            quantity = max(quantity, _groups(depth.quantities))
            total = max(total, _groups(np.maximum(depth.buy, depth.sell)))
        return _Shape(known.rows, quantity, max(price, known.price), total)

    def _write_sizes(self, depth: ChainDepth, shape: _Shape, words: Words, levels: Words) -> None:
        """Quantities, orders and totals: they change only with the books' shapes."""
        tables, layout = _tables(), self._layout
        quantities = _number_words(depth.quantities, shape.quantity, tables.digits)
        self._put(levels, layout.quantity, quantities)
        orders = tables.orders.take(depth.orders + tables.last_level[:, None])
        self._put(levels, layout.orders, [orders])
        for first, total in ((layout.buy_total, depth.buy), (layout.sell_total, depth.sell)):
            for k, word in enumerate(_number_words(total, shape.total, tables.digits)):
                words[:, first + k] = word
        self._sizes = depth.quantities

    @staticmethod
    def _put(levels: Words, first: int, words: list[Words]) -> None:
        """Each level's ``words`` from word ``first`` of the level on."""
        n = levels.shape[2]
        for k, word in enumerate(words):
            levels[:, :, :, first + k] = word.reshape(2, LEVELS, n)

    def _views(self, shape: _Shape) -> tuple[Words, Words]:
        """The buffer as words, ``[row, word]``, and its levels' words, ``[side, level,
        row, word]`` (level-major, as ``ChainDepth``), for rows of ``shape``; a buffer of a
        new shape starts from the template, its numbers all to be written."""
        if shape == self._shape:
            return self._words, self._levels
        layout = _Layout.of(shape)
        template = np.frombuffer(layout.template, dtype=np.uint8)
        rows = np.repeat(template[None, :], shape.rows, axis=0)
        words = rows.view(np.uint32)
        size = words.itemsize
        levels: Words = as_strided(
            words[:, len(_ROW_HEAD) // _WORD :],
            shape=(2, LEVELS, shape.rows, layout.level_words),
            strides=(layout.side_words * size, layout.level_words * size, rows.strides[0], size),
            writeable=True,
        )
        self._rows, self._words, self._levels = rows, words, levels
        self._layout, self._shape, self._sizes = layout, shape, None
        return words, levels


Columns = tuple[list[BookJson | None], list[int | None], list[int | None]]


class ModeFields:
    """What each tick of a chain carries from its book, by the mode its token streams in,
    as Kite sends them: ``FULL`` the depth and the totals (written: ``BookWriter``),
    ``QUOTE`` the totals, ``LTP`` neither."""

    def __init__(self) -> None:
        self._writer = BookWriter()
        self._totals: tuple[IntArray, list[int | None], list[int | None]] | None = None
        self._full: tuple[Sequence[str], int] = ((), 0)

    def columns(self, depth: ChainDepth, modes: Sequence[str]) -> Columns:
        """The written book (FULL), bid total and offer total (QUOTE) of each contract of
        ``depth``, None where its mode carries none; ``modes`` in the chain's order (the
        same sequence while they stay: how many are FULL is kept for it)."""
        full, n = self._count_full(modes), len(modes)
        nothing: list[int | None] = [None] * n
        books: list[BookJson | None] = list(self._writer.rows(depth)) if full else [None] * n
        if full == n:
            return books, nothing, nothing
        buys, sells = self._listed_totals(depth)
        quote = [m not in (FULL, LTP) for m in modes]
        books = [b if m == FULL else None for b, m in zip(books, modes, strict=True)]
        buys = [b if q else None for b, q in zip(buys, quote, strict=True)]
        sells = [s if q else None for s, q in zip(sells, quote, strict=True)]
        return books, buys, sells

    def _count_full(self, modes: Sequence[str]) -> int:
        known, full = self._full
        if known is not modes:
            full = sum(mode == FULL for mode in modes)
            self._full = (modes, full)
        return full

    def _listed_totals(self, depth: ChainDepth) -> tuple[list[int | None], list[int | None]]:
        """The totals as lists, listed again only when they are other arrays."""
        known = self._totals
        if known is None or known[0] is not depth.buy:
            known = (depth.buy, depth.buy.tolist(), depth.sell.tolist())
            self._totals = known
        return known[1], known[2]

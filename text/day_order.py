"""The day-order control token: how a date model is told to read ``03/04/2019``.

A numeric date whose day and month are both 12 or less reads two ways: 4 March in the US,
3 April in most of Europe. The date model takes the order as part of its input, as a
control token in front of the text (the way a multilingual translation model is told its
target language), so one exported model serves both orders:

- ``MONTH_FIRST_TOKEN`` (U+E000) + a space: read ``03/04/2019`` as 2019-03-04;
- ``DAY_FIRST_TOKEN`` (U+E001) + a space: read it as 2019-04-03.

Both are Unicode private-use characters: no real text holds them, and the tokenizer's
normalization (NFKC, case, whitespace) leaves them alone. The space after the token makes
the tokens the same whatever whitespace the text starts with (the tokenizer collapses it).
Generated training rows carry their own token (``transforms/synthetic.py``); the exported
date model puts one in front of every served text that has none, from its ``day_first``
input (``models/export.py``). A date with a day over 12 (``25/09/2003``) reads one way
only, whatever the token says.

>>> day_order_prefix(True) == DAY_FIRST_TOKEN + " "
True
>>> strip_day_order(day_order_prefix(False) + "03/04/2019")
'03/04/2019'
"""

from __future__ import annotations

from typing import Iterable, Optional

import tensorflow as tf

MONTH_FIRST_TOKEN = "\ue000"
DAY_FIRST_TOKEN = "\ue001"
DAY_ORDER_TOKENS = (MONTH_FIRST_TOKEN, DAY_FIRST_TOKEN)
# The names the model card and the docs give the two orders.
ORDER_NAMES = {MONTH_FIRST_TOKEN: "month_first", DAY_FIRST_TOKEN: "day_first"}
_STARTS_WITH_TOKEN = f"(?s)[{MONTH_FIRST_TOKEN}{DAY_FIRST_TOKEN}].*"


def day_order_prefix(day_first: bool) -> str:
    """What goes in front of a text to say its order: the token, then a space."""
    return (DAY_FIRST_TOKEN if day_first else MONTH_FIRST_TOKEN) + " "


def day_order_of(text: str) -> Optional[bool]:
    """True (day first) or False (month first) when ``text`` starts with a token; None when not."""
    if text[:1] == DAY_FIRST_TOKEN:
        return True
    if text[:1] == MONTH_FIRST_TOKEN:
        return False
    return None


def strip_day_order(text: str) -> str:
    """``text`` without its leading token and the space after it (unchanged when it has none)."""
    if day_order_of(text) is None:
        return text
    return text[2:] if text[1:2] == " " else text[1:]


def orders_in(tokens: Iterable[str]) -> tuple[str, ...]:
    """The orders (``month_first``, ``day_first``) whose token is among ``tokens`` (a vocabulary)."""
    present = set(tokens)
    return tuple(ORDER_NAMES[token] for token in DAY_ORDER_TOKENS if token in present)


def with_day_order(texts: tf.Tensor, day_first: tf.Tensor) -> tf.Tensor:
    """Graph op: each text with the token of its ``day_first`` (``bool [batch]``) in front.

    A text that already starts with a token keeps it (and gets no second one): a corpus
    may say each row's order itself, as generated corpora do.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    prefixes = tf.where(tf.convert_to_tensor(day_first, tf.bool), day_order_prefix(True), day_order_prefix(False))
    tagged = tf.strings.regex_full_match(texts, _STARTS_WITH_TOKEN)
    return tf.where(tagged, texts, tf.strings.join([prefixes, texts]))

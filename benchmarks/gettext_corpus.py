"""An English->Spanish corpus from the gettext catalogs installed on this machine, built at run time.

Every Debian package with translated messages installs ``<localedir>/es/LC_MESSAGES/<domain>.mo``:
``msgid`` (English) -> ``msgstr`` (Spanish). The catalogs carry their packages' licences, so
the corpus is never shipped: :func:`build_corpus` reads them where they are and writes the
pairs into the benchmark's work folder.

Kept: singular messages (no plural forms; a message context is dropped, the message kept) of
2 to 20 words whose source and translation hold no format specifier (``%s``, ``%1$d``,
``%(name)s``, ``{0}``, ``${var}``), no path or URL, no markup (``<b>``, ``&amp;``) and no
letterless text; runs of whitespace (line breaks of wrapped messages, the column alignment
of ``--help`` texts) become one space. Each distinct (source, translation) pair is kept once.
The held-out part is chosen by a hash of the source, so every translation of one source
falls on the same side, on every machine.

:func:`carried_share` scores what a translation of these messages must not translate: the
numbers, identifiers and acronyms (``1.34``, ``prefer-l32r``, ``OLPC``) the reference keeps.
"""

from __future__ import annotations

import collections
import gettext
import glob
import hashlib
import os
import re
from typing import Iterable, NamedTuple, Optional, Sequence

# printf (%s %-10.3f %1$s %lu %%, and programs' own letters: binutils' %B %P), Python (%(name)s),
# brace ({0} {name}) and shell (${var} $HOME) forms.
_FORMAT = re.compile(r"%(?:\([^)]*\))?[-+ #0'*]*\d*(?:\$[-+ #0'*]*\d*)?(?:\.\d+|\.\*)?(?:hh|h|ll|l|L|q|j|z|t|I64)?"
                     r"[A-Za-z%@]|\{[^{}\s]*\}|\$\{?[A-Za-z_]\w*\}?")
# /usr/bin, ~/x, ./configure, C:\x, file:// and http:// URLs, and name.ext file names.
_PATH = re.compile(r"(?:^|[\s\"'(=`])(?:~|\.{1,2})?/[\w.-]|[A-Za-z]:\\|\w+://|\bwww\.|"
                   r"\b[\w-]+\.(?:c|h|cc|cpp|py|pl|sh|so|o|a|txt|conf|cfg|ini|log|xml|html?|json|ya?ml|mo|po|"
                   r"gz|xz|bz2|zip|tar|deb|rpm|desktop|service|d)\b")
# <tag>, </tag>, <tag attr=...>, <br/>, and &entity; / &#123;.
_MARKUP = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")
_LETTER = re.compile(r"[^\W\d_]")
MIN_WORDS, MAX_WORDS = 2, 20


class Pair(NamedTuple):
    """One message and its translation."""

    source: str
    target: str


def catalog_files(language: str = "es", localedirs: Optional[Iterable[str]] = None) -> list[str]:
    """The ``.mo`` files of ``language`` under the locale folders (default: the system's, as gettext finds them)."""
    if localedirs is None:
        localedirs = [os.path.join(os.path.dirname(gettext._default_localedir), "locale"), "/usr/share/locale",
                      "/usr/local/share/locale"]
    files: set[str] = set()
    for localedir in localedirs:
        files.update(glob.glob(os.path.join(localedir, language, "LC_MESSAGES", "*.mo")))
    return sorted(files)


def rejection(source: str, target: str) -> Optional[str]:
    """Why a message pair is left out of the corpus (None: kept)."""
    for text in (source, target):
        if not text.strip():
            return "empty"
        if _FORMAT.search(text):
            return "format specifier"
        if _MARKUP.search(text):
            return "markup"
        if _PATH.search(text):
            return "path or URL"
        if not _LETTER.search(text):
            return "no letter"
    if not MIN_WORDS <= len(source.split()) <= MAX_WORDS:
        return "length"
    return None


def catalog_pairs(path: str) -> Iterable[tuple[str, str]]:
    """``(msgid, msgstr)`` of a compiled catalog's singular messages (the header and plural forms left out)."""
    with open(path, "rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    for key, value in catalog.items():
        if isinstance(key, str) and key and isinstance(value, str) and value:
            yield key.split("\x04", 1)[-1], value


def build_corpus(files: Iterable[str]) -> tuple[list[Pair], collections.Counter]:
    """The distinct kept pairs of the catalogs (sorted) and the count of messages left out per reason."""
    kept: set[Pair] = set()
    skipped: collections.Counter = collections.Counter()
    for path in files:
        try:
            pairs = list(catalog_pairs(path))
        except (OSError, UnicodeDecodeError) as error:
            skipped[f"unreadable catalog ({type(error).__name__})"] += 1
            continue
        for source, target in pairs:
            source, target = " ".join(source.split()), " ".join(target.split())
            reason = rejection(source, target)
            if reason:
                skipped[reason] += 1
            else:
                kept.add(Pair(source, target))
    return sorted(kept), skipped


def held_out(source: str, percent: float) -> bool:
    """Whether a source falls in the held-out ``percent`` (a hash of the source: the same on every machine)."""
    bucket = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big") % 10_000
    return bucket < percent * 100


def split_corpus(pairs: Iterable[Pair], percent: float) -> tuple[list[Pair], list[Pair]]:
    """(train pairs, held-out pairs), by :func:`held_out`."""
    train, test = [], []
    for pair in pairs:
        (test if held_out(pair.source, percent) else train).append(pair)
    return train, test


def write_tsv(path: str, pairs: Iterable[Pair]) -> int:
    """Writes ``source<TAB>target`` lines (UTF-8); returns how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(f"{pair.source}\t{pair.target}\n")
            count += 1
    return count


# A token to carry through: a number, an identifier or an acronym (digits, "_", inner capitals, all caps).
_CARRIED = re.compile(r"\d|_|^.+[A-Z]|^[A-Z]{2,}$")
# Punctuation a token may carry around it in running text.
_EDGES = "()[]{}<>«»\"'`¿?¡!.,;:"


def carried_tokens(source: str, reference: str) -> list[str]:
    """Tokens of ``source`` (punctuation around them stripped) that ``reference`` also holds
    verbatim and that look like numbers, identifiers or acronyms: what a translation must carry."""
    in_reference = {t.strip(_EDGES) for t in reference.split()}
    return [t for t in (w.strip(_EDGES) for w in source.split()) if t and t in in_reference and _CARRIED.search(t)]


def carried_share(sources: Sequence[str], references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    """How many of the tokens to carry (:func:`carried_tokens`) each hypothesis holds verbatim."""
    total = kept = 0
    for source, reference, hypothesis in zip(sources, references, hypotheses):
        wanted = carried_tokens(source, reference)
        have = {t.strip(_EDGES) for t in hypothesis.split()}
        total += len(wanted)
        kept += sum(t in have for t in wanted)
    return {"carried_tokens": total, "carried_percent": round(100.0 * kept / total, 2) if total else None}


"""The gettext corpus builder of benchmarks/translate_gettext.py on catalogs this test writes itself."""

from __future__ import annotations

import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import gettext_corpus  # noqa: E402


def write_mo(path, messages: dict) -> str:
    """A GNU .mo catalog of ``messages`` (keys: msgid, ``(msgid, msgid_plural)`` for plural forms), as msgfmt writes it."""
    entries = {"": "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n"}
    for key, value in messages.items():
        if isinstance(key, tuple):
            entries["\0".join(key)] = "\0".join(value)
        else:
            entries[key] = value
    keys = sorted(entries)
    ids, strs = b"", b""
    offsets = []
    for key in keys:
        k, v = key.encode("utf-8"), entries[key].encode("utf-8")
        offsets.append((len(ids), len(k), len(strs), len(v)))
        ids += k + b"\0"
        strs += v + b"\0"
    start = 7 * 4
    ids_start = start + len(keys) * 16
    strs_start = ids_start + len(ids)
    table = b"".join(struct.pack("<II", length, ids_start + offset) for offset, length, _, _ in offsets)
    table += b"".join(struct.pack("<II", length, strs_start + offset) for _, _, offset, length in offsets)
    header = struct.pack("<Iiiiiii", 0x950412DE, 0, len(keys), start, start + len(keys) * 8, 0, 0)
    with open(path, "wb") as f:
        f.write(header + table + ids + strs)
    return str(path)


KEPT = {
    "Display this help and exit": "Muestra esta ayuda y termina",
    "Árabe (OLPC)": "Árabe (OLPC)",
    "prefer-l32r conflicts with prefer-const16": "prefer-l32r entra en conflicto con prefer-const16",
    "Show   hidden\nfiles": "Mostrar ficheros\n ocultos",
    "menu\x04Open recent files": "Abrir ficheros recientes",
    "100 percent done": "100 por ciento hecho",
}
SKIPPED = {
    "cannot open %s for reading": "no se puede abrir %s para leer",
    "%1$d of %2$d files": "%1$d de %2$d ficheros",
    "Hello %(name)s, welcome": "Hola %(name)s, bienvenido",
    "Removed {count} packages today": "Se eliminaron {count} paquetes hoy",
    "Set ${HOME} first": "Defina ${HOME} primero",
    "Use <b>bold</b> text": "Use texto en <b>negrita</b>",
    "Tom &amp; Jerry show": "Tom y Jerry",
    "Edit the file /etc/fstab now": "Edite el fichero /etc/fstab ahora",
    "See https://example.org for details": "Vea https://example.org",
    "Could not read config.ini file": "No se pudo leer el fichero config.ini",
    "Quit": "Salir",
    " ".join(["word"] * 21): " ".join(["palabra"] * 21),
    "Untranslated message here": "",
    "Only the target has 50% here": "Solo el destino tiene %d aquí",
    "--- ---": "--- ---",
}


@pytest.fixture
def locale_dir(tmp_path):
    messages = tmp_path / "locale" / "es" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    write_mo(messages / "first.mo", {**KEPT, **SKIPPED, ("One file deleted", "%d files deleted"):
                                     ("Un fichero borrado", "%d ficheros borrados")})
    # The same pair in a second catalog is kept once; another translation of a source is a pair too.
    write_mo(messages / "second.mo", {"Display this help and exit": "Muestra esta ayuda y termina",
                                      "Close the window": "Cierra la ventana",
                                      "Close the window now": "Cerrar la ventana ahora"})
    (tmp_path / "locale" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    write_mo(tmp_path / "locale" / "fr" / "LC_MESSAGES" / "first.mo", {"Close the window": "Fermer la fenêtre"})
    return str(tmp_path / "locale")


def test_keeps_plain_messages_and_skips_specifiers_paths_markup_and_plurals(locale_dir):
    files = gettext_corpus.catalog_files("es", [locale_dir])
    assert [os.path.basename(f) for f in files] == ["first.mo", "second.mo"]
    pairs, skipped = gettext_corpus.build_corpus(files)
    assert sorted(pairs) == sorted({
        ("Display this help and exit", "Muestra esta ayuda y termina"),
        ("Árabe (OLPC)", "Árabe (OLPC)"),
        ("prefer-l32r conflicts with prefer-const16", "prefer-l32r entra en conflicto con prefer-const16"),
        ("Show hidden files", "Mostrar ficheros ocultos"),
        ("Open recent files", "Abrir ficheros recientes"),
        ("100 percent done", "100 por ciento hecho"),
        ("Close the window", "Cierra la ventana"),
        ("Close the window now", "Cerrar la ventana ahora"),
    })
    assert skipped == {"format specifier": 6, "markup": 2, "path or URL": 3, "length": 2, "no letter": 1}
    # "" (untranslated) and the plural entry never reach the filters.
    assert sum(skipped.values()) == len(SKIPPED) - 1


def test_rejection_names_the_reason():
    assert gettext_corpus.rejection("Saved %lu bytes", "Guardados %lu bytes") == "format specifier"
    assert gettext_corpus.rejection("Press %% to go", "Pulse %% para ir") == "format specifier"
    assert gettext_corpus.rejection("Open ./configure first", "Abra ./configure antes") == "path or URL"
    assert gettext_corpus.rejection("Read ~/notes today", "Lea ~/notes hoy") == "path or URL"
    assert gettext_corpus.rejection("A <i>new</i> tab", "Una pestaña <i>nueva</i>") == "markup"
    assert gettext_corpus.rejection("and/or both", "y/o ambos") is None
    assert gettext_corpus.rejection("version 2.6.0 released", "versión 2.6.0 publicada") is None


def test_the_held_out_part_is_a_hash_of_the_source():
    pairs = [gettext_corpus.Pair(f"message number {i}", f"mensaje número {i}") for i in range(4000)]
    pairs.append(gettext_corpus.Pair("message number 7", "otra traducción del mensaje 7"))
    train, held_out = gettext_corpus.split_corpus(pairs, 5.0)
    assert len(train) + len(held_out) == len(pairs)
    assert 150 < len(held_out) < 250
    held_sources = {p.source for p in held_out}
    assert not held_sources & {p.source for p in train}
    assert gettext_corpus.split_corpus(list(reversed(pairs)), 5.0)[1] == list(reversed(held_out))


def test_writes_tab_separated_pairs(tmp_path):
    pairs = [gettext_corpus.Pair("Close the window", "Cierra la ventana")]
    path = str(tmp_path / "c.tsv")
    assert gettext_corpus.write_tsv(path, pairs) == 1
    assert open(path, encoding="utf-8").read() == "Close the window\tCierra la ventana\n"


def test_the_tokens_to_carry_are_numbers_identifiers_and_acronyms_the_reference_keeps():
    source = "prefer-l32r conflicts with prefer-const16 (OLPC) in GNU tar 1.34, Display"
    reference = "prefer-l32r entra en conflicto con prefer-const16 (OLPC) en GNU tar 1.34, Display"
    assert gettext_corpus.carried_tokens(source, reference) == ["prefer-l32r", "prefer-const16", "OLPC", "GNU", "1.34"]
    assert gettext_corpus.carried_tokens("Show 42 files", "Mostrar cuarenta y dos ficheros") == []
    share = gettext_corpus.carried_share([source, "Show 42 files"], [reference, "Mostrar 42 ficheros"],
                                         ["prefer-l32r choca con prefer-const (OLPC) GNU 1.34", "Mostrar 42 archivos."])
    assert share == {"carried_tokens": 6, "carried_percent": round(100 * 5 / 6, 2)}
    assert gettext_corpus.carried_share(["Display"], ["Mostrar"], ["Mostrar"])["carried_percent"] is None

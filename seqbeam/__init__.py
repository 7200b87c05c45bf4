"""seqbeam: batch jobs that turn text corpora into annotations with sequence models.

The code lives in the top-level folders ``configs/`` and ``text/`` (the bottom floor),
``transforms/`` (Beam) and ``models/`` (Keras) side by side above them, and ``pipelines/``
(the jobs) on top; ``setup.py`` installs them as ``seqbeam.configs``, ``seqbeam.text``,
``seqbeam.transforms``, ``seqbeam.models`` and ``seqbeam.pipelines`` so that nothing is
installed under a generic top-level name. ``seqbeam.storage`` (small files on local disk
and gs://) sits on the bottom floor too.
"""

__version__ = "0.1.0"

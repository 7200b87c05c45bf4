"""seqbeam: batch jobs that turn text corpora into annotations with sequence models.

The code lives in the top-level folders ``pipelines/``, ``transforms/`` and ``models/``
of the repository; ``setup.py`` installs them as ``seqbeam.pipelines``,
``seqbeam.transforms`` and ``seqbeam.models`` so that nothing is installed under a
generic top-level name.
"""

__version__ = "0.1.0"

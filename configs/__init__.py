"""Task configuration: the YAML files of every task and their schema (``schema.py``).

The bottom of the house: nothing here imports another part of seqbeam.
"""

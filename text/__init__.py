"""The text layer: reserved ids, vocabularies, the tokenizer and the text -> ids graph.

TensorFlow and tensorflow-text only (no Beam, no Keras model): both the Beam transforms
and the Keras models stand on it, so preprocessing and serving share one tokenizer.
"""

"""The Keras this package builds on.

transformers' TF models (``TFBertModel``) are tf-keras (Keras 2) models, so every Keras object in
bert_repro is built with ``tf_keras`` too, imported explicitly: mixing Keras 3 layers with a
tf-keras model fails. We never set ``TF_USE_LEGACY_KERAS`` behind the caller's back; importing
tensorflow, transformers and bert_repro in any order works because nothing here depends on what
``tf.keras`` resolves to.
"""

from __future__ import annotations

import tf_keras as keras

__all__ = ["keras"]

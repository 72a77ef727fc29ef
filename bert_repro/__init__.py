"""bert_repro: look inside BERT — what fine-tuning does to each layer, whether syntax can be read
off its hidden states, and how to turn hidden states into word and sentence embeddings.

Reproduces Merchant et al., "What Happens To BERT Embeddings During Fine-tuning?" (BlackboxNLP
2020) with structural probes (Hewitt & Manning, NAACL 2019). Submodules import TensorFlow
lazily where they can; the top-level package imports nothing heavy.
"""

from __future__ import annotations

__version__ = "0.1.0"

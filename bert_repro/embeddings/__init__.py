"""Word and sentence embeddings from BERT's hidden states, in one call each.

The embeddings studies (word vectors by recipe and their similarity; the norms of vectors
before and after BERT; the input-embedding split; a classifier on frozen features), on the
batched extraction path (:mod:`bert_repro.features`)::

    from bert_repro.embeddings import word_embedding, cosine_similarity, word_positions
    hs = hidden_states(model, tokenizer, [text])[0]           # (L+1, T, H), [0] = embeddings
    ids = encode_texts(tokenizer, [text])[0].input_ids
    first, second = word_positions(tokenizer, ids, "code")    # wordpiece positions
    x = word_embedding(hs, first, recipe="sum_last4")         # sum of the last 4 encoder layers
    y = word_embedding(hs, second, recipe="sum_last4")
    cosine_similarity(x, y)

Recipes (``first_layer`` = encoder layer 1, not the embedding output; ``sum_all`` = the L
encoder layers; see :mod:`bert_repro.embeddings.recipes`). The functions that run BERT take
``settings=`` (an :class:`~bert_repro.settings.ExtractionSettings`) and its fields as keywords
(``max_tokens=``, ``max_batch=``, ``strategy=`` a ``tf.distribute.Strategy``, ``progress=``),
like :mod:`bert_repro.features`. The studies (:func:`similarity_study`, :func:`norms_study`,
:func:`decompose_study`, :func:`classify_study`) return result objects that ``save(folder)``
their JSON, CSV and figures.
"""

from __future__ import annotations

from ..ops import cosine_similarity, pairwise_cosine
from .classifier import (
    ClassificationResult,
    LabeledTexts,
    build_head,
    check_classify_study,
    classify_study,
    evaluate_head,
    read_labeled_csv,
    stratified_split,
    train_head,
    truncate_texts,
)
from .decompose import (
    DecompositionResult,
    InputEmbeddingParts,
    decompose_study,
    decompose_text,
    embedding_output,
    embedding_weights,
    input_embedding_parts,
    layer_norm,
    max_abs_difference,
)
from .norms import (
    NormsResult,
    describe_norms,
    embedding_row_norms,
    norms_study,
    read_word_definitions,
    word_token_ids,
)
from .recipes import (
    RECIPES,
    Recipe,
    RecipeName,
    combine_layers,
    recipe_layers,
    reduce_layers,
    word_embedding,
    word_embedding_by_word,
)
from .sentences import (
    SENTENCE_POOLINGS,
    SentencePooling,
    model_sentence_pooling,
    pool_sentences,
    pooler_output,
    sentence_features,
    sentence_vectors,
)
from .similarity import (
    SimilarityResult,
    check_similarity_study,
    occurrence_similarity,
    sentence_similarity,
    similarity_study,
)
from .words import (
    TextWords,
    WordOccurrences,
    corpus_word_vectors,
    find_word,
    occurrence_vectors,
    text_word_index,
    word_occurrences,
    word_pieces,
    word_positions,
)

__all__ = [
    "RECIPES",
    "SENTENCE_POOLINGS",
    "ClassificationResult",
    "DecompositionResult",
    "InputEmbeddingParts",
    "LabeledTexts",
    "NormsResult",
    "Recipe",
    "RecipeName",
    "SentencePooling",
    "SimilarityResult",
    "TextWords",
    "WordOccurrences",
    "build_head",
    "check_classify_study",
    "check_similarity_study",
    "classify_study",
    "combine_layers",
    "corpus_word_vectors",
    "cosine_similarity",
    "decompose_study",
    "decompose_text",
    "describe_norms",
    "embedding_output",
    "embedding_row_norms",
    "embedding_weights",
    "evaluate_head",
    "find_word",
    "input_embedding_parts",
    "layer_norm",
    "max_abs_difference",
    "norms_study",
    "occurrence_similarity",
    "occurrence_vectors",
    "pairwise_cosine",
    "pool_sentences",
    "pooler_output",
    "read_labeled_csv",
    "read_word_definitions",
    "recipe_layers",
    "reduce_layers",
    "sentence_features",
    "sentence_similarity",
    "sentence_vectors",
    "model_sentence_pooling",
    "similarity_study",
    "stratified_split",
    "train_head",
    "truncate_texts",
    "word_embedding",
    "word_embedding_by_word",
    "text_word_index",
    "word_occurrences",
    "word_pieces",
    "word_positions",
    "word_token_ids",
]

"""Tiny language models built offline, in memory, for tests and benches: a word-level tokenizer
trained on the architecture strings and a small BERT/ModernBERT built from its config."""
from __future__ import annotations

from collections.abc import Sequence


def word_tokenizer(corpus: Sequence[str], max_length: int = 512):
    """A word-level tokenizer trained on ``corpus`` in memory (words and single punctuation marks,
    ``[CLS] ... [SEP]`` around each text): no download, for tests and benches."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation("isolated")])
    raw.train_from_iterator(list(corpus), trainers.WordLevelTrainer(special_tokens=special))
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", special.index("[CLS]")), ("[SEP]", special.index("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length)


def encoder_from_config(tokenizer, kind: str = "modernbert", hidden_size: int = 32, num_layers: int = 2,
                        num_heads: int = 2, intermediate_size: int | None = None, max_length: int = 512,
                        seed: int = 0):
    """A randomly initialised regressor (``num_labels=1``) built from a config, no download.

    ``modernbert``: the paper's architecture, mean-pooled head (as the answerdotai configs);
    ``bert``: a BERT with the ``[CLS]`` pooler (as all-MiniLM-L6-v2)."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        ModernBertConfig,
        ModernBertForSequenceClassification,
    )

    common = dict(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
                  num_attention_heads=num_heads, intermediate_size=intermediate_size or 2 * hidden_size,
                  max_position_embeddings=max_length, num_labels=1, problem_type="regression",
                  pad_token_id=tokenizer.pad_token_id)
    if kind == "modernbert":
        ids = dict(cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                   bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
        config, klass = ModernBertConfig(**common, **ids, classifier_pooling="mean"), ModernBertForSequenceClassification
    elif kind == "bert":
        config, klass = BertConfig(**common), BertForSequenceClassification
    else:
        raise ValueError(f"kind must be 'modernbert' or 'bert', got {kind!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return klass(config)


def tiny_encoder(corpus: Sequence[str], hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
                 max_length: int = 512, kind: str = "modernbert", seed: int = 0):
    """``(model, tokenizer)`` for ``LanguageModelPredictor(model=..., tokenizer=...)``: a tiny
    encoder (``encoder_from_config``) and a word-level tokenizer trained on ``corpus``."""
    tokenizer = word_tokenizer(corpus, max_length)
    model = encoder_from_config(tokenizer, kind, hidden_size, num_layers, num_heads, max_length=max_length,
                                seed=seed)
    return model, tokenizer

"""The word-level tokenizer of the grammar: one token per word, as a standard HF fast tokenizer.

Wrapping a ``tokenizers`` WordLevel model in ``PreTrainedTokenizerFast`` lets every method
treat the tiny model and SmolLM2 the same way (``tokenizer(texts, padding=True)`` gives ids
and an attention mask). Encoding prepends ``<bos>``; padding is on the right.
"""

from __future__ import annotations

from napkit.lm.corpus import GRAMMAR, Grammar

BOS, EOS, PAD, UNK = "<bos>", "<eos>", "<pad>", "<unk>"


def build_tokenizer(grammar: Grammar = GRAMMAR):
    """A ``PreTrainedTokenizerFast`` over the grammar's vocabulary (``<bos>`` added in front)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(grammar.vocabulary)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="right",
        model_max_length=32,
    )

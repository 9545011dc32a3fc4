"""The word-level tokenizer of the grammar: one token per word, as a standard HF fast tokenizer.

Wrapping a ``tokenizers`` WordLevel model in ``PreTrainedTokenizerFast`` lets every method
treat the tiny model and SmolLM2 the same way (``tokenizer(texts, padding=True)`` gives ids
and an attention mask). Encoding prepends ``<bos>``; padding is on the right.
"""

from __future__ import annotations

from collections.abc import Sequence

from napkit.errors import NapkitError
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


def known_token_id(tokenizer, word: str, what: str = "word") -> int:
    """The id of ``word``, refused unless it is exactly one token the vocabulary knows (a
    word-level tokenizer maps an unknown word to ``<unk>``, one token that means nothing)."""
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise NapkitError(f"{what} {word!r} is {len(ids)} tokens ({ids}), not one")
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and ids[0] == unk:
        raise NapkitError(f"{what} {word!r} is not in the model's vocabulary")
    return int(ids[0])


def refuse_unknown_words(tokenizer, texts: Sequence[str], input_ids, attention_mask) -> None:
    """One clear error when an encoded prompt holds the unknown-word token (a word outside
    the vocabulary would otherwise be read as ``<unk>`` and analysed silently)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return
    hit = ((input_ids == unk) & (attention_mask > 0)).nonzero()
    if len(hit):
        i, pos = (int(v) for v in hit[0])
        raise NapkitError(
            f"prompt {texts[i]!r} has a word the model's vocabulary does not know (token {pos})"
        )

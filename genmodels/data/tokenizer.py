"""Tokenizers for the poem models, trained on our own corpus with `tokenizers` and wrapped as transformers
`PreTrainedTokenizerFast`.

- ``en``: word level. Text is NFKC-normalised and lower-cased; a pre-tokenizer cuts it into words (letters
  and digits, with inner apostrophes kept: ``don't``, ``o'er``) and single punctuation marks. Words seen
  fewer than ``min_frequency`` times map to ``[UNK]``, which the samplers never emit. A word-level
  vocabulary makes every sampled token a real word; a 2k BPE on 5k lines produced sub-word soup
  in an early probe.
- ``zh``: character level (each CJK character is a token), rare characters map to ``[UNK]``.

Special tokens have fixed ids: ``[PAD]`` 0, ``[UNK]`` 1, ``[BOS]`` 2, ``[EOS]`` 3.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIALS = [PAD, UNK, BOS, EOS]
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
TOKENIZER_FILE = "tokenizer.json"

_EN_WORD = r"[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]"


def _build(lang: str) -> Tokenizer:
    tok = Tokenizer(models.WordLevel(vocab={s: i for i, s in enumerate(SPECIALS)}, unk_token=UNK))
    if lang == "en":
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_EN_WORD), behavior="isolated")]
        )
    elif lang == "zh":
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"."), behavior="isolated")]
        )
    else:
        raise ValueError(f"unknown language {lang!r}")
    tok.decoder = decoders.WordPiece()  # joins with spaces; detokenize() fixes punctuation spacing
    return tok


def train_tokenizer(lang: str, lines: Iterable[str], min_frequency: int = 2,
                    vocab_size: int = 0) -> PreTrainedTokenizerFast:
    """Train a word-level (en) or character-level (zh) tokenizer on ``lines``; ``vocab_size`` > 0 keeps only that
    many tokens (specials included), the most frequent."""
    tok = _build(lang)
    cap = {"vocab_size": vocab_size} if vocab_size > 0 else {}
    trainer = trainers.WordLevelTrainer(min_frequency=min_frequency, special_tokens=SPECIALS, show_progress=False,
                                        **cap)
    tok.train_from_iterator(list(lines), trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS)


def save_tokenizer(tok: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """Write the tokenizer as one ``tokenizer.json`` file (``path`` may be that file or its folder)."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / TOKENIZER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.backend_tokenizer.save(str(path))
    return path


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    return wrap(Tokenizer.from_file(str(path)))


def encode(tok: PreTrainedTokenizerFast, text: str) -> list[int]:
    """Token ids of one line, without specials."""
    return tok.backend_tokenizer.encode(text, add_special_tokens=False).ids


def tokens(tok: PreTrainedTokenizerFast, text: str) -> list[str]:
    return tok.backend_tokenizer.encode(text, add_special_tokens=False).tokens


_NO_SPACE_BEFORE = re.compile(r" ([,.;:!?)\]}’”]|'(?=\s|$))")
_NO_SPACE_AFTER = re.compile(r"([(\[{‘“]) ")


def detokenize(tok: PreTrainedTokenizerFast, ids: Iterable[int], lang: str) -> str:
    """Readable text from ids: specials dropped, Chinese joined, English punctuation re-attached."""
    words = [tok.convert_ids_to_tokens(int(i)) for i in ids if int(i) not in (PAD_ID, BOS_ID, EOS_ID)]
    if lang == "zh":
        return "".join(w for w in words if w != UNK)
    text = " ".join(words)
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    text = _NO_SPACE_AFTER.sub(r"\1", text)
    text = re.sub(r" ?- ?- ?", " -- ", text)
    if text.count('"') % 2:  # an unbalanced quote mark reads as noise
        text = text.replace('"', "")
    text = re.sub(r"\bi\b", "I", text)  # i, i'm, i'll -> I, I'm, I'll
    text = re.sub(r"\s+", " ", text).lstrip(",;:.!?)]}'- ").rstrip()
    return text[:1].upper() + text[1:]


def pad_ids(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id sequences as ids (N, T) padded with PAD (0), T the longest (at least 1), and lengths (N,)."""
    x = torch.zeros(len(seqs), max(1, max(map(len, seqs), default=1)), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return x, torch.tensor([len(s) for s in seqs], dtype=torch.long)


def lines_to_tensor(tok, lines: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (N, max_len) padded with PAD and lengths (N,); empty lines are dropped, long ones truncated."""
    seqs = [ids[:max_len] for ids in (encode(tok, line) for line in lines)]
    return pad_ids([s for s in seqs if s])

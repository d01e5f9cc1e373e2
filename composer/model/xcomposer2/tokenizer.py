"""The checkpoint's sentencepiece tokenizer (tokenizer.model) with the chat template's special tokens.

The official tokenizer (a slow, sentencepiece-backed class in the remote code) first splits text
at its special tokens, then runs sentencepiece on each piece in between; this does the same,
so `[UNUSED_TOKEN_146]` becomes one id whether or not the .model file marks it as a control symbol.
In the release: <s>=1, </s>=2, [UNUSED_TOKEN_145]=92542 (end of turn), [UNUSED_TOKEN_146]=92543.
"""
from __future__ import annotations

import re
from pathlib import Path

import sentencepiece as spm

BOS = "<s>"
EOS = "</s>"
END_OF_TURN = "[UNUSED_TOKEN_145]"
START_OF_TURN = "[UNUSED_TOKEN_146]"
_SPECIAL = re.compile(r"(<s>|</s>|\[UNUSED_TOKEN_\d+\])")


class XComposer2Tokenizer:
    def __init__(self, model_proto: bytes) -> None:
        self.sp = spm.SentencePieceProcessor()
        self.sp.LoadFromSerializedProto(model_proto)
        self.bos_id = self._required(BOS)
        self.eos_id = self._required(EOS)
        self.end_of_turn_id = self._required(END_OF_TURN)
        self.start_of_turn_id = self._required(START_OF_TURN)
        self.special_ids = frozenset(
            i
            for i in range(self.sp.get_piece_size())
            if _SPECIAL.fullmatch(self.sp.id_to_piece(i)) or self.sp.is_control(i)
        )

    @classmethod
    def from_file(cls, path: str | Path) -> XComposer2Tokenizer:
        return cls(Path(path).read_bytes())

    def _required(self, piece: str) -> int:
        i = self.sp.piece_to_id(piece)
        if i == self.sp.unk_id() and piece != self.sp.id_to_piece(i):
            raise ValueError(f"tokenizer.model has no piece {piece!r}")
        return i

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str, bos: bool = False) -> list[int]:
        ids = [self.bos_id] if bos else []
        for chunk in _SPECIAL.split(text):
            if not chunk:
                continue
            if _SPECIAL.fullmatch(chunk):
                i = self.sp.piece_to_id(chunk)
                if i != self.sp.unk_id():
                    ids.append(i)
                    continue
            ids.extend(self.sp.encode(chunk))
        return ids

    def encode_segments(self, segments: list[tuple[str, bool]], bos: bool = False) -> list[int]:
        """Encode text made of template segments (True: special tokens in them are special) and
        content segments (False: a writer's or a model's text, where `[UNUSED_TOKEN_145]` is
        just characters, so pasted text cannot forge a turn). Text between special tokens is
        joined before sentencepiece runs, so benign content tokenizes exactly as `encode` would."""
        ids = [self.bos_id] if bos else []
        pending = ""

        def flush() -> None:
            nonlocal pending
            if pending:
                ids.extend(self.sp.encode(pending))
                pending = ""

        for text, is_template in segments:
            for chunk in _SPECIAL.split(text):
                if not chunk:
                    continue
                if not _SPECIAL.fullmatch(chunk):
                    pending += chunk
                    continue
                flush()
                special = self.sp.piece_to_id(chunk)
                if is_template and special != self.sp.unk_id():
                    ids.append(special)
                else:
                    # sentencepiece would still match the string as a user-defined symbol: run its
                    # first character and the rest apart, so it stays characters.
                    ids.extend(self.sp.encode(chunk[0]) + self.sp.encode(chunk[1:]))
        flush()
        return ids

    def decode(self, ids: list[int]) -> str:
        """Text of the ids with special tokens left out (as skip_special_tokens=True); ids past the
        vocabulary (a model's padded embedding rows) are dropped too."""
        n = self.vocab_size
        return self.sp.decode([i for i in ids if i not in self.special_ids and 0 <= i < n])

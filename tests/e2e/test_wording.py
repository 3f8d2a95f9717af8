"""What Muse says about a bad choice or an oversized image reads right, in English and 简体中文."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from bench.fakediscord import Payloads
from museharness import body, harness, invoke, is_ephemeral, run


def _text(rec) -> str:
    return body(rec).get("content") or ""


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` and holds no pixels: Pillow's decompression-bomb check refuses it
    when it opens it, before Muse's own check can read its size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def test_a_choice_says_one_of(bot_models: Path):
    async def main():
        async with harness(bot_models) as (fake, bot, P):
            return {
                "poem": await invoke(fake, bot, P.command("poem", {"lang": "fr"})),
                "poem_zh": await invoke(fake, bot, Payloads(locale="zh-CN").command("poem", {"lang": "fr"})),
                "session_kind": await invoke(fake, bot, P.command("session", {"kind": "video"}, sub="start")),
                "session_lang": await invoke(fake, bot, P.command("session", {"kind": "poem", "lang": "fr"},
                                                                  sub="start")),
            }

    out = run(main())
    for name, rec in out.items():
        assert is_ephemeral(rec) and "between" not in _text(rec) and "之间" not in _text(rec), (name, _text(rec))
    assert _text(out["poem"]) == "`lang` must be one of en, zh; you gave fr."
    assert _text(out["poem_zh"]) == "`lang` 必须是 en, zh 之一；你给的是 fr。"
    assert _text(out["session_kind"]) == "`kind` must be one of image, poem; you gave video."
    assert _text(out["session_lang"]) == "`lang` must be one of en, zh; you gave fr."


def test_an_image_too_large_to_open_is_not_question_mark_pixels(bot_models: Path):
    data = _png_header(20000, 20000)  # 400 megapixels: past Pillow's own limit, refused as it opens

    async def main():
        async with harness(bot_models) as (fake, bot, P):
            url = fake.add_asset("huge.png", data, "image/png")
            out = {}
            for name, payloads in (("en", P), ("zh", Payloads(locale="zh-CN"))):
                p = payloads.command("interpolate", {"from_image": {"attachment": 8}, "to": "🐶"}, sub="image",
                                     attachments=[payloads.attachment(8, "huge.png", url, len(data), "image/png")])
                out[name] = await invoke(fake, bot, p)
            return out

    out = run(main())
    for name, rec in out.items():
        text = _text(rec)
        assert is_ephemeral(rec) and "huge.png" in text and "?" not in text and "？" not in text, (name, text)
        assert "Error id" not in text and "错误编号" not in text, (name, text)
    assert "megapixels" in _text(out["en"]) and "too large" in _text(out["en"])
    assert "百万像素" in _text(out["zh"])

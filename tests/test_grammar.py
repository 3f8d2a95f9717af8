"""The grammar check (`genmodels.grammar`, Link Grammar's null links per word) and the grammar-aware ranking of
poem lines (`PoemModel.rank_scores`, a card's ``sampling.grammar``)."""

from __future__ import annotations

import random
import sys

import pytest
import torch

from genmodels import checkpoints
from genmodels.grammar import (
    GrammarUnavailable,
    LinkGrammar,
    Parse,
    calibration,
    gap_share,
    grammar_check,
    prepared,
    shuffled,
)

torch.set_num_threads(1)

REAL = ["The moon is rising on the sea.", "I wandered lonely as a cloud", "The night is dark and the wind is cold,",
        "Beneath the flowering vines.", "She walks in beauty, like the night", "The woods are lovely, dark and deep,"]


def test_the_parser_links_english_and_leaves_word_salad_unlinked():
    check = grammar_check()
    assert check is grammar_check()  # one checker per process
    for line in REAL:
        p = check.parse(line)
        assert p.nulls == 0 and p.words >= 4, (line, p)
    salad = check.parse("sea the on rising is moon the")
    assert salad.nulls >= 2 and salad.rate > 0.2
    assert check.parse("") == Parse(0, 0, 0, 0, 0.0, 0) and Parse(0, 0).rate == 1.0  # an empty line is never preferred
    # the strict parse allows fewer uses of each word, so it never leaves fewer words unlinked
    for line in [*REAL, "Show from their sad and flow.", "His lord (, had sinks to be"]:
        p = check.parse(line)
        assert p.strict_nulls >= p.nulls
    assert check.parse("Show from their sad and flow.").strict_nulls > 0
    # deterministic
    assert [check.parse(l) for l in REAL] == [check.parse(l) for l in REAL]


def test_a_soft_line_end_is_dropped_and_shuffles_keep_every_word():
    assert prepared("  The woods are  lovely, dark and deep,  ") == "The woods are lovely, dark and deep"
    assert prepared("My heart — ;") == "My heart" and prepared("Why?") == "Why?"
    line = "The woods are lovely, dark and deep,"
    mixed = shuffled(line, random.Random(0))
    assert sorted(mixed.split()) == sorted(["The", "woods", "are", "lovely", ",", "dark", "and", "deep", ","])
    assert gap_share(0.2, 0.1, 0.3) == pytest.approx(0.5) and gap_share(0.05, 0.1, 0.3) < 0


def test_surface_faults_catch_what_the_dictionary_lets_through():
    from genmodels.grammar import surface_faults

    assert surface_faults("A old life and a man.") == 1  # the parser links "a old"
    assert surface_faults("In his bed and his own own,") == 1
    assert surface_faults("The child. the venus that was not free.") == 1
    assert surface_faults("An hour, a unicorn, an apple, a one-eyed king, an old man") == 0
    assert surface_faults("He said. Then he went, and that that was") == 0
    assert grammar_check().parse("A old life and a man.").surface == 1


def test_real_lines_parse_better_than_the_same_words_shuffled():
    lines = REAL * 3
    cal = calibration(grammar_check(), lines, random.Random(1))
    assert cal["heldout"] < cal["shuffled"] and cal["heldout_full"] > cal["shuffled_full"]
    assert grammar_check().null_rate(REAL) == 0.0 and grammar_check().full_rate(REAL) == 1.0


def test_a_missing_parser_fails_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "linkgrammar", None)  # import linkgrammar now raises ImportError
    with pytest.raises(GrammarUnavailable, match="python3-link-grammar"):
        LinkGrammar()


EN_LINES = ["the moon is high", "the sea is cold", "my heart is heavy", "I walked alone", "the wind is cold",
            "we danced in the hall", "the rose is red", "the stars are silent"] * 3


@pytest.fixture
def ranking_model(tmp_path):
    """A tiny en version with an LM baseline whose card ranks 4 lines per row by grammar, then fluency."""
    from genmodels.nets.textvae import TextVAE
    from genmodels.poetry import GRAMMAR, PoemModel
    from tests.textmodels import save_text_model

    import dataclasses

    vdir = save_text_model(tmp_path, "en", EN_LINES)
    plain = PoemModel.load("en", root=tmp_path)
    torch.manual_seed(0)
    lm = TextVAE(dataclasses.replace(plain.model.cfg, latent_dim=0)).eval()  # an LM baseline
    card = {**plain.card, "sampling": {"rerank": 4, "grammar": GRAMMAR}}
    m = PoemModel(plain.model, plain.tok, card, "en", scorer=lm, grammar=grammar_check())
    assert m.rerank == 4 and m.grammar is grammar_check()
    return m, vdir, tmp_path


def test_grammar_ranking_puts_faults_before_fluency_and_redraws_faulty_rows_once(ranking_model):
    from genmodels.poetry import GRAMMAR_WEIGHT

    m, _, _ = ranking_model
    z = m._spread(torch.zeros(m.model.cfg.latent_dim), 1.0, 5, torch.Generator().manual_seed(1))  # (5, D)
    lines = m._decode(z, torch.Generator().manual_seed(2), 0.9, 0.9, None)
    # the same draws by hand: K samples per row in one batch, ranked by faults, then fluency less the parse's cost
    g = torch.Generator().manual_seed(2)
    ids = m._sample_ids(z.repeat_interleave(4, 0), g, 0.9, 0.9, None)
    parses = [m.grammar.parse(m._text(r).strip()) for r in ids]
    scores, fl = m.rank_scores(ids), m.fluency(ids)
    for s, f, p in zip(scores.tolist(), fl.tolist(), parses):
        faults = p.faults
        assert s == pytest.approx(f - GRAMMAR_WEIGHT * faults - p.cost) or s == f == -float("inf")
    top, best = scores.view(5, 4).max(1)
    expect = [ids[i * 4 + int(j)] for i, j in enumerate(best)]
    # rows whose best line has a fault draw K more once, from the same generator, and keep the better best
    again = [i for i, t in enumerate(top.tolist()) if t < -GRAMMAR_WEIGHT / 2]
    if again:
        more = m._sample_ids(z[again].repeat_interleave(4, 0), g, 0.9, 0.9, None)
        top2, best2 = m.rank_scores(more).view(-1, 4).max(1)
        for r, i in enumerate(again):
            if float(top2[r]) > float(top[i]):
                expect[i] = more[r * 4 + int(best2[r])]
    assert lines == [m._text(row).strip() for row in expect]
    for i, j in enumerate(best):  # the first batch's pick has the fewest faults of its row
        row = [parses[i * 4 + k] for k in range(4)]
        assert row[int(j)].faults == min(p.faults for p in row)
    # a seed still names its poem, and the latents stay as drawn
    a, b = m.sample(seed=3), m.sample(seed=3)
    assert a.text == b.text and a.latents.equal(b.latents)
    m.grammar = None  # without the parser the same draws are ranked by fluency alone
    assert m._decode(z, torch.Generator().manual_seed(2), 0.9, 0.9, None) == [
        m._text(ids[i * 4 + int(j)]).strip() for i, j in enumerate(fl.view(5, 4).argmax(1))]


def test_a_card_names_the_grammar_check_it_ranks_with(tmp_path):
    from genmodels.poetry import PoemModel, _grammar
    from tests.textmodels import save_text_model

    assert not _grammar({"sampling": {"rerank": 16}}, "en")
    assert _grammar({"sampling": {"rerank": 16, "grammar": "link-grammar"}}, "en")
    with pytest.raises(checkpoints.CheckpointError, match="grammar check"):
        _grammar({"sampling": {"grammar": "stanza"}}, "en")
    with pytest.raises(checkpoints.CheckpointError, match="en only"):
        _grammar({"sampling": {"grammar": "link-grammar"}}, "zh")
    vdir = save_text_model(tmp_path, "en", EN_LINES)
    checkpoints.update_card(vdir, sampling={"grammar": "link-grammar"})  # no ranking: nothing to rank with grammar
    assert PoemModel.load("en", root=tmp_path).grammar is None


def test_a_version_that_asks_for_the_parser_still_writes_poems_without_it(monkeypatch, caplog):
    """A host without Link Grammar still serves the shipped English poems, ranked by the LM alone, and says so."""
    from genmodels import grammar as grammar_module
    from genmodels import paths
    from genmodels.poetry import PoemModel

    def unavailable():
        raise GrammarUnavailable("no parser here; install Debian's python3-link-grammar")

    monkeypatch.setattr(grammar_module, "grammar_check", unavailable)
    with caplog.at_level("WARNING", logger="genmodels.poetry"):
        m = PoemModel.load("en", root=paths.SHIPPED)
    assert m.grammar is None and "LM alone" in caplog.text and "python3-link-grammar" in caplog.text
    assert len(m.sample(seed=3).lines) == 4

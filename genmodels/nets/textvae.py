"""A recurrent variational autoencoder for single lines of verse, and its language-model twin.

Model (Bowman et al. 2016, "Generating Sentences from a Continuous Space")::

    q(z | x)  = N(mu(x), diag(exp(logvar(x))))      encoder: bidirectional GRU over x, last states -> (mu, logvar)
    p(z)      = N(0, I)
    p(x | z)  = prod_t p(x_t | x_<t, z)              decoder: GRU, h_0 = tanh(W z), input_t = [emb(x_{t-1}); z]

Training maximises the ELBO  E_q[log p(x|z)] - KL(q(z|x) || p(z)),  with the tricks that keep the decoder from
ignoring z (posterior collapse); the trainer chooses among them (``training/textvae.py``):

- word dropout on the decoder input (Bowman et al. 2016): input tokens are replaced by ``[UNK]`` at rate ``p``;
- cyclical KL annealing (Fu et al. 2019, "Cyclical Annealing Schedule");
- a KL threshold / free bits (Kingma et al. 2016; Li et al. 2019, "A Surprisingly Effective Fix for Deep Latent
  Variable Modeling of Text"), here on the total KL of a batch;
- an autoencoder warm start (Li et al. 2019) — beta = 0 for the first steps.

Evaluation follows He et al. 2019 ("Lagging Inference Networks and Posterior Collapse"): importance-weighted
log-likelihood with K samples from q (Burda et al. 2016), KL, mutual information I(x; z) with the estimator of
Hoffman & Johnson (2016), and active units.

With ``latent_dim = 0`` the same class is a plain GRU language model with the SAME decoder (no z input, h_0 = 0);
it is the baseline the VAE's likelihood is compared against.

Shapes: B batch, T time steps, E embedding size, H decoder hidden size, G encoder hidden size (per direction),
D latent size, V vocabulary size, K importance samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
LOG_2PI = math.log(2 * math.pi)
NUCLEUS_HEAD = 1024  # tokens sorted first when sampling; the full sort only when a row's nucleus is larger


def _sorted_head(probs: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``probs.sort(descending=True)`` (B, V) where the nucleus needs it. A row whose top-p nucleus lies within its
    ``NUCLEUS_HEAD`` most probable tokens gets those sorted (torch.topk) and zeros after them, as the nucleus mask
    would leave it; the other rows get the full sort. The draw that follows is then the one a full sort gives
    (same length, same kept probabilities in the same places; up to the order of exactly equal probabilities),
    at a fraction of the cost over a large vocabulary."""
    V = probs.shape[-1]
    if V <= 2 * NUCLEUS_HEAD:
        return probs.sort(dim=-1, descending=True)
    head_p, head_i = probs.topk(NUCLEUS_HEAD, dim=-1)  # (B, H), descending
    sorted_p = torch.zeros_like(probs)  # (B, V)
    order = torch.zeros_like(probs, dtype=torch.long)  # (B, V)
    sorted_p[:, :NUCLEUS_HEAD], order[:, :NUCLEUS_HEAD] = head_p, head_i
    wide = head_p.sum(-1) - head_p[:, -1] < top_p  # (B,): the nucleus may reach past the head
    if bool(wide.any()):
        sorted_p[wide], order[wide] = probs[wide].sort(dim=-1, descending=True)
    return sorted_p, order


@dataclass
class TextVAEConfig:
    vocab_size: int
    embed_dim: int = 256  # E; also the size the decoder projects to before the tied output embedding
    enc_hidden: int = 192  # G, per direction
    dec_hidden: int = 320  # H
    latent_dim: int = 32  # D; 0 makes this a plain language model
    dropout: float = 0.3  # on embeddings and decoder outputs (not on z)
    max_len: int = 24  # tokens per line, EOS excluded; longer lines are truncated
    tie_embeddings: bool = True
    pos_embed: bool = False  # add a learned embedding of the time step to decoder inputs (helps fixed line shapes)
    bow_dim: int = 0  # > 0: a bag-of-words head z -> bow_dim -> V (Zhao et al. 2017), used in training only


class TextVAE(nn.Module):
    def __init__(self, cfg: TextVAEConfig):
        super().__init__()
        self.cfg = cfg
        E, G, H, D, V = cfg.embed_dim, cfg.enc_hidden, cfg.dec_hidden, cfg.latent_dim, cfg.vocab_size
        self.embed = nn.Embedding(V, E, padding_idx=PAD_ID)
        self.drop = nn.Dropout(cfg.dropout)
        if D > 0:
            self.encoder = nn.GRU(E, G, batch_first=True, bidirectional=True)
            self.to_stats = nn.Linear(2 * G, 2 * D)  # -> (mu, logvar)
            self.z_to_h = nn.Linear(D, H)
            if cfg.bow_dim > 0:  # predicts the line's words from z alone, so z must carry its content
                self.bow_head = nn.Sequential(nn.Linear(D, cfg.bow_dim), nn.Tanh(), nn.Linear(cfg.bow_dim, V))
        self.decoder = nn.GRU(E + D, H, batch_first=True)
        if cfg.pos_embed:
            self.pos = nn.Embedding(cfg.max_len + 1, E)  # positions 0 .. max_len (BOS ... last token)
        self.out_proj = nn.Linear(H, E)  # H -> E, then logits = W_emb (E) + b
        self.out_bias = nn.Parameter(torch.zeros(V))
        if not cfg.tie_embeddings:
            self.out_embed = nn.Parameter(torch.randn(V, E) * E**-0.5)

    @property
    def latent(self) -> bool:
        return self.cfg.latent_dim > 0

    # ----------------------------------------------------------------------------------------------------
    # Encoder
    # ----------------------------------------------------------------------------------------------------

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T) token ids without BOS/EOS, padded with PAD; lengths: (B,) >= 1. Returns mu, logvar (B, D)."""
        e = self.drop(self.embed(x))  # (B, T, E)
        packed = pack_padded_sequence(e, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)  # h: (2, B, G), forward and backward final states
        h = torch.cat([h[0], h[1]], dim=-1)  # (B, 2G)
        mu, logvar = self.to_stats(h).chunk(2, dim=-1)  # (B, D) each
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, k: int = 1, generator=None) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I). Returns (B, D) when k == 1, else (K, B, D)."""
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)  # (K, B, D)
        z = mu + (0.5 * logvar).exp() * eps
        return z[0] if k == 1 else z

    # ----------------------------------------------------------------------------------------------------
    # Decoder
    # ----------------------------------------------------------------------------------------------------

    def _init_hidden(self, z: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        if z is None:
            return torch.zeros(1, batch, self.cfg.dec_hidden, device=device)  # (1, B, H)
        return torch.tanh(self.z_to_h(z)).unsqueeze(0)  # (1, B, H)

    def _logits(self, out: torch.Tensor) -> torch.Tensor:
        """out: (..., H) -> logits (..., V) through the (tied) output embedding."""
        w = self.embed.weight if self.cfg.tie_embeddings else self.out_embed  # (V, E)
        return self.out_proj(self.drop(out)) @ w.t() + self.out_bias

    def decoder_states(self, inp: torch.Tensor, z: torch.Tensor | None, h0: torch.Tensor | None = None,
                       start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced decoder GRU. inp: (B, T) ids starting with BOS (or continuing at time step ``start``);
        z: (B, D) or None. Returns the outputs (B, T, H) and the last hidden state (1, B, H)."""
        B, T = inp.shape
        e = self.embed(inp)  # (B, T, E)
        if self.cfg.pos_embed:
            steps = torch.arange(start, start + T, device=inp.device).clamp(max=self.cfg.max_len)  # (T,)
            e = e + self.pos(steps)  # (B, T, E)
        e = self.drop(e)
        if z is not None:
            e = torch.cat([e, z.unsqueeze(1).expand(B, T, z.shape[-1])], dim=-1)  # (B, T, E + D)
        h = self._init_hidden(z, B, inp.device) if h0 is None else h0
        return self.decoder(e, h)  # (B, T, H), (1, B, H)

    def decode(self, inp: torch.Tensor, z: torch.Tensor | None, h0: torch.Tensor | None = None, start: int = 0):
        """``decoder_states`` followed by the output layer: logits (B, T, V) and the last hidden state (1, B, H)."""
        out, h = self.decoder_states(inp, z, h0, start)
        return self._logits(out), h

    def log_px_z(self, x: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor | None, word_dropout: float = 0.0,
                 generator=None) -> torch.Tensor:
        """log p(x | z) per line, EOS included. x: (B, T) without specials; z: (B, D) or None. Returns (B,)."""
        B, T = x.shape
        bos = torch.full((B, 1), BOS_ID, dtype=x.dtype, device=x.device)
        inp = torch.cat([bos, x], dim=1)  # (B, T + 1): BOS x_1 ... x_T
        target = torch.cat([x, torch.zeros_like(bos)], dim=1)  # (B, T + 1): x_1 ... x_T PAD
        target[torch.arange(B, device=x.device), lengths] = EOS_ID  # EOS right after the last token
        if word_dropout > 0:
            drop = torch.rand(inp.shape, device=x.device, generator=generator) < word_dropout
            drop[:, 0] = False  # keep BOS
            inp = inp.masked_fill(drop & (inp != PAD_ID), UNK_ID)
        out, _ = self.decoder_states(inp, z)  # (B, T + 1, H)
        # The output layer sees the N real (non-PAD) target positions only: with a vocabulary of 20k words it is
        # most of a step's work, and a batch is about half padding.
        real = target != PAD_ID  # (B, T + 1)
        logits = self._logits(out[real])  # (N, V)
        nll = F.cross_entropy(logits.float(), target[real], reduction="none")  # (N,)
        return torch.zeros(B, device=x.device, dtype=nll.dtype).index_add_(0, real.nonzero()[:, 0], nll).neg()  # (B,)

    # ----------------------------------------------------------------------------------------------------
    # Objective and likelihood estimates
    # ----------------------------------------------------------------------------------------------------

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, sigma^2) || N(0, I)) per dimension, (B, D)."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)

    def elbo_terms(self, x: torch.Tensor, lengths: torch.Tensor, word_dropout: float = 0.0,
                   generator=None) -> dict[str, torch.Tensor]:
        """Per-line reconstruction NLL (B,) and KL per dimension (B, D) with one reparameterised sample.

        For the language model (latent_dim 0) the KL is an empty (B, 0) tensor and ``rec`` is the exact NLL.
        """
        if not self.latent:
            rec = -self.log_px_z(x, lengths, None, word_dropout, generator)
            return {"rec": rec, "kl": rec.new_zeros(x.shape[0], 0)}
        mu, logvar = self.encode(x, lengths)  # (B, D)
        z = self.reparameterize(mu, logvar, generator=generator)  # (B, D)
        rec = -self.log_px_z(x, lengths, z, word_dropout, generator)  # (B,)
        out = {"rec": rec, "kl": self.kl(mu, logvar), "mu": mu, "logvar": logvar}
        if self.cfg.bow_dim > 0:
            logp = F.log_softmax(self.bow_head(z).float(), dim=-1)  # (B, V)
            words = x > EOS_ID  # (B, T): real tokens, not PAD / UNK / BOS / EOS
            out["bow"] = -(logp.gather(1, x) * words).sum(dim=1)  # (B,) bag-of-words NLL
        return out

    @staticmethod
    def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
        return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)

    @torch.no_grad()
    def log_importance_weights(self, x: torch.Tensor, lengths: torch.Tensor, k: int = 100, chunk: int = 50,
                               generator=None, proposal_scale: float = 1.0) -> torch.Tensor:
        """log w_k = log p(x|z_k) + log p(z_k) - log r(z_k|x),  z_k ~ r(z|x).  Returns (K, B).

        The proposal r is the encoder's posterior with its standard deviations multiplied by ``proposal_scale``:
        r(z|x) = N(mu(x), s^2 sigma(x)^2). s = 1 is q itself, the IWAE estimate of Burda et al. (2016). Any
        proposal that covers the posterior gives an unbiased estimate of p(x), so a stochastic lower bound on
        log p(x); a trained q is narrower than the true posterior (Cremer et al. 2018, "Inference Suboptimality
        in Variational Autoencoders"), and a wider r can make the bound much tighter at the same K.
        """
        if proposal_scale <= 0:
            raise ValueError("proposal_scale must be positive")
        B = x.shape[0]
        mu, logvar = self.encode(x, lengths)  # (B, D): q(z|x)
        logvar_r = logvar + 2 * math.log(proposal_scale)  # (B, D): r(z|x)
        weights = []
        for start in range(0, k, chunk):
            kk = min(chunk, k - start)
            z = self.reparameterize(mu, logvar_r, kk, generator)  # (kk, B, D) (or (B, D) when kk == 1)
            z = z.reshape(kk, B, -1)
            log_pxz = self.log_px_z(x.repeat(kk, 1), lengths.repeat(kk), z.reshape(kk * B, -1)).view(kk, B)
            log_pz = self.log_normal(z, torch.zeros_like(mu), torch.zeros_like(logvar))  # (kk, B)
            log_rz = self.log_normal(z, mu, logvar_r)  # (kk, B)
            weights.append(log_pxz + log_pz - log_rz)
        return torch.cat(weights, dim=0)  # (K, B)

    @staticmethod
    def iw_from_weights(log_w: torch.Tensor) -> torch.Tensor:
        """The importance-weighted estimate from log weights (K, B): logsumexp_k log w_k - log K, (B,)."""
        return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])

    @torch.no_grad()
    def iw_log_likelihood(self, x: torch.Tensor, lengths: torch.Tensor, k: int = 100, chunk: int = 50,
                          generator=None, proposal_scale: float = 1.0) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) per line (Burda et al. 2016), (B,).

        log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log r(z_k|x)] - log K,   z_k ~ r(z|x),
        with r = q widened by ``proposal_scale`` (1: q itself). It is a lower bound in expectation that tightens
        as K grows and as r approaches the true posterior; with q itself and a latent that carries 10-20 nats,
        K = 100 still reads 0.5-1 nat below K = 1000 (docs/MODELS.md). For the language model this is the exact
        log-likelihood.
        """
        if not self.latent:
            return self.log_px_z(x, lengths, None)
        return self.iw_from_weights(self.log_importance_weights(x, lengths, k, chunk, generator, proposal_scale))

    @torch.no_grad()
    def mutual_information(self, x: torch.Tensor, lengths: torch.Tensor, generator=None) -> float:
        """I(x; z) under q(z|x) p_data(x), the estimator of Hoffman & Johnson (2016) as in He et al. (2019).

        I = E_x E_q(z|x)[log q(z|x)] - E_q(z)[log q(z)],  with q(z) ~= (1/N) sum_n q(z | x_n) over the batch.
        Bounded above by log N, so pass many lines (the whole held-out set).
        """
        mu, logvar = self.encode(x, lengths)  # (N, D)
        N, D = mu.shape
        neg_entropy = (-0.5 * D * LOG_2PI - 0.5 * (1 + logvar).sum(-1)).mean()  # E[log q(z|x)]
        z = self.reparameterize(mu, logvar, generator=generator)  # (N, D), one sample per x
        log_q = self.log_normal(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # (N_z, N_x)
        log_qz = torch.logsumexp(log_q, dim=1) - math.log(N)  # (N,)
        return float(neg_entropy - log_qz.mean())

    # ----------------------------------------------------------------------------------------------------
    # Generation
    # ----------------------------------------------------------------------------------------------------

    def _banned(self, logits: torch.Tensor, step: int, length: int | None) -> torch.Tensor:
        """Never emit PAD, UNK or BOS; never end a line before its first token (or before ``length`` tokens)."""
        logits[..., PAD_ID] = -float("inf")
        logits[..., UNK_ID] = -float("inf")
        logits[..., BOS_ID] = -float("inf")
        if step == 0 or (length is not None and step < length):
            logits[..., EOS_ID] = -float("inf")
        return logits

    @torch.no_grad()
    def _generate(self, z: torch.Tensor | None, n: int, pick, max_len: int | None,
                  length: int | None = None, max_repeat: int = 0, prior: "TextVAE | None" = None,
                  prior_weight: float = 0.0) -> list[list[int]]:
        """Shared decoding loop. ``length`` forces lines of exactly that many tokens (a verse form); ``max_repeat``
        > 0 never lets one token occur more than that many times in a line (for zh: no character thrice).

        ``prior``: a language model (latent_dim 0, same vocabulary) fused in at every step, shallow fusion
        (Gulcehre et al. 2015): log-probabilities (1 - w) log p(x_t | z, x_<t) + w log p_LM(x_t | x_<t) with
        w = ``prior_weight``, then ``pick``. The latent keeps choosing what a line is about; the LM, which
        has seen more of the language than any one z-conditioned draw reflects, keeps it grammatical."""
        max_len = length or max_len or self.cfg.max_len
        device = self.embed.weight.device
        B = z.shape[0] if z is not None else n
        h = self._init_hidden(z, B, device)  # (1, B, H)
        fuse = prior is not None and prior_weight > 0
        h_prior = prior._init_hidden(None, B, device) if fuse else None  # (1, B, H_LM)
        tok = torch.full((B, 1), BOS_ID, dtype=torch.long, device=device)  # (B, 1)
        out = torch.zeros(B, max_len, dtype=torch.long, device=device)  # (B, L)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        counts = torch.zeros(B, self.cfg.vocab_size, dtype=torch.int16, device=device) if max_repeat > 0 else None
        for t in range(max_len):
            logits, h = self.decode(tok, z, h, start=t)  # (B, 1, V)
            logits = logits[:, -1].float()  # (B, V)
            if fuse:
                lm_logits, h_prior = prior.decode(tok, None, h_prior, start=t)  # (B, 1, V)
                logits = ((1 - prior_weight) * torch.log_softmax(logits, -1)
                          + prior_weight * torch.log_softmax(lm_logits[:, -1].float(), -1))
            logits = self._banned(logits, t, length)  # (B, V)
            if counts is not None:
                logits = logits.masked_fill(counts >= max_repeat, -float("inf"))
            nxt = pick(logits)  # (B,)
            nxt = nxt.masked_fill(done, PAD_ID)
            if counts is not None:
                counts[torch.arange(B, device=device), nxt] += 1
            out[:, t] = nxt
            done |= nxt == EOS_ID
            if bool(done.all()):
                break
            tok = nxt.unsqueeze(1)
        seqs = []
        for row in out.tolist():
            seq = []
            for i in row:
                if i in (EOS_ID, PAD_ID):
                    break
                seq.append(i)
            seqs.append(seq)
        return seqs

    @torch.no_grad()
    def greedy(self, z: torch.Tensor | None, n: int = 1, max_len: int | None = None,
               length: int | None = None, max_repeat: int = 0, prior: "TextVAE | None" = None,
               prior_weight: float = 0.0) -> list[list[int]]:
        """Greedy decode from z (B, D) (or n lines from the LM when z is None). Returns token ids, no specials."""
        return self._generate(z, n, lambda logits: logits.argmax(-1), max_len, length, max_repeat, prior,
                              prior_weight)

    @torch.no_grad()
    def sample(self, z: torch.Tensor | None, n: int = 1, temperature: float = 1.0, top_p: float = 0.9,
               generator: torch.Generator | None = None, max_len: int | None = None,
               length: int | None = None, max_repeat: int = 0, prior: "TextVAE | None" = None,
               prior_weight: float = 0.0) -> list[list[int]]:
        """Nucleus (top-p) sampling (Holtzman et al. 2020) from z (B, D), with temperature; deterministic given
        ``generator``. ``length`` forces exactly that many tokens, ``max_repeat`` caps any token's count in a line,
        ``prior`` and ``prior_weight`` fuse in a language model (see `_generate`). Returns token ids without
        specials."""
        if temperature <= 0:
            return self.greedy(z, n, max_len, length, max_repeat, prior, prior_weight)

        def pick(logits: torch.Tensor) -> torch.Tensor:
            probs = torch.softmax(logits / temperature, dim=-1)  # (B, V)
            sorted_p, order = _sorted_head(probs, top_p)  # (B, V), descending where it matters
            keep = sorted_p.cumsum(-1) - sorted_p < top_p  # always keeps the top token
            sorted_p = sorted_p * keep
            choice = torch.multinomial(sorted_p.cpu(), 1, generator=generator).to(logits.device)  # (B, 1)
            return order.gather(-1, choice).squeeze(-1)

        return self._generate(z, n, pick, max_len, length, max_repeat, prior, prior_weight)

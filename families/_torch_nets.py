"""The PyTorch networks of the eleven network families; every size comes from the caller (the step's params).

Every network maps ``(x, symbols)`` to one raw output per target, shape (batch, targets): a logit for a
binary target, a standardised value for a regression target. ``x`` is (batch, features) for a tabular
network and (batch, lookback, features) for a sequence network (`SEQUENCE_NETS`). Networks with a learned
asset embedding (``asset_embedding_dim`` > 0) concatenate it to their pooled representation before the
head (seed 002's architectures); symbol ids run from 0 to ``n_symbols - 1`` over the whole data set.

This module imports torch at import time: only the torch adapters import it, inside ``fit``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "CNN1D", "GAN", "LSTM", "MLP", "SEQUENCE_NETS", "VAE", "AssetEmbedding", "MultiTask", "TabCNN", "TabLSTM",
    "TabTransformer", "Transformer",
]


class AssetEmbedding(nn.Module):
    """A learned vector per symbol (an empty vector when ``dim`` is 0)."""

    def __init__(self, n_symbols: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.table = nn.Embedding(n_symbols, dim) if dim else None

    def forward(self, pooled: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        if self.table is None:
            return pooled
        return torch.cat([pooled, self.table(symbols).to(pooled.dtype)], dim=1)


def _dense(sizes: Sequence[int], dropout: float, batch_norm: bool) -> nn.Sequential:
    """Linear → (BatchNorm) → ReLU → Dropout for each consecutive pair of ``sizes``."""
    layers: list[nn.Module] = []
    for width_in, width_out in itertools.pairwise(sizes):
        layers.append(nn.Linear(width_in, width_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width_out))
        layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """Feed-forward layers on the cross-section (seed 002 architecture 1: batch norm and asset embedding optional)."""

    def __init__(self, features: int, outputs: int, hidden_layers: Sequence[int], dropout: float, batch_norm: bool,
                 n_symbols: int, asset_embedding_dim: int) -> None:
        super().__init__()
        self.embed = AssetEmbedding(n_symbols, asset_embedding_dim)
        self.body = _dense([features + asset_embedding_dim, *hidden_layers], dropout, batch_norm)
        self.head = nn.Linear(hidden_layers[-1] if hidden_layers else features + asset_embedding_dim, outputs)

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.embed(x, symbols)))


class _Convolutions(nn.Module):
    """1-D convolutions over the last axis of (batch, channels, length), then the mean over length."""

    def __init__(self, channels: int, filters: Sequence[int], kernel_size: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width_in, width_out in zip([channels, *filters[:-1]], filters, strict=True):
            layers += [nn.Conv1d(width_in, width_out, kernel_size, padding="same"), nn.BatchNorm1d(width_out),
                       nn.ReLU(), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).mean(dim=-1)


class CNN1D(nn.Module):
    """Convolutions over time of a lookback window (channels = features), pooled, then a head."""

    def __init__(self, features: int, outputs: int, filters: Sequence[int], kernel_size: int, dropout: float,
                 n_symbols: int, asset_embedding_dim: int) -> None:
        super().__init__()
        self.conv = _Convolutions(features, filters, kernel_size, dropout)
        self.embed = AssetEmbedding(n_symbols, asset_embedding_dim)
        self.head = nn.Linear(filters[-1] + asset_embedding_dim, outputs)

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(self.conv(x.transpose(1, 2)), symbols))


class TabCNN(CNN1D):
    """CNN1D over the feature vector of one row, read as a one-channel sequence of ``features`` steps."""

    def __init__(self, features: int, outputs: int, filters: Sequence[int], kernel_size: int, dropout: float,
                 n_symbols: int, asset_embedding_dim: int) -> None:
        super().__init__(1, outputs, filters, kernel_size, dropout, n_symbols, asset_embedding_dim)

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(self.conv(x.unsqueeze(1)), symbols))


class LSTM(nn.Module):
    """A recurrent network over a lookback window, with seed 002's options.

    ``cell`` picks LSTM or GRU (architectures 2 and 3); ``attention`` lets the last step's output attend over
    every step's output with multi-head attention, plus a residual (seed 002 mean-pooled the attended steps;
    reading them from the last step keeps the present row's weight); without it the last output is used;
    ``conv_layers`` > 0 puts convolutions with batch norm in front (architecture 4, CNN-LSTM).
    ``recurrent_dropout`` is the dropout between stacked recurrent layers; ``dropout`` is applied to the attention
    and before the head.
    """

    def __init__(self, features: int, outputs: int, lstm_units: int, lstm_layers: int, cell: str, attention: bool,
                 attention_heads: int, dropout: float, recurrent_dropout: float, conv_layers: int,
                 conv_filters: int, kernel_size: int, n_symbols: int, asset_embedding_dim: int) -> None:
        super().__init__()
        front: list[nn.Module] = []
        width = features
        for _ in range(conv_layers):
            front += [nn.Conv1d(width, conv_filters, kernel_size, padding="same"), nn.BatchNorm1d(conv_filters),
                      nn.ReLU()]
            width = conv_filters
        self.front = nn.Sequential(*front) if front else None
        recurrent = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = recurrent(width, lstm_units, num_layers=lstm_layers, batch_first=True,
                             dropout=recurrent_dropout if lstm_layers > 1 else 0.0)
        self.norm = nn.LayerNorm(lstm_units)
        self.attention = (nn.MultiheadAttention(lstm_units, attention_heads, dropout=dropout, batch_first=True)
                          if attention else None)
        self.attention_norm = nn.LayerNorm(lstm_units) if attention else None
        self.embed = AssetEmbedding(n_symbols, asset_embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(lstm_units + asset_embedding_dim, outputs)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, length, channels) → (batch, lstm_units)."""
        if self.front is not None:
            x = self.front(x.transpose(1, 2)).transpose(1, 2)
        out, _ = self.rnn(x)
        out = self.norm(out)
        if self.attention is None or self.attention_norm is None:
            return out[:, -1]
        last = out[:, -1:]
        attended, _ = self.attention(last, out, out, need_weights=False)
        return self.attention_norm(attended + last).squeeze(1)

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(self.encode(x), symbols)))


class TabLSTM(LSTM):
    """LSTM over the feature vector of one row, read as a sequence of ``features`` one-value steps."""

    def __init__(self, features: int, outputs: int, **options: object) -> None:
        super().__init__(1, outputs, **options)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        return super().forward(x.unsqueeze(2), symbols)


class _FeatureTokens(nn.Module):
    """A Transformer encoder whose tokens are the features (attention cost grows with the feature count).

    Each token is a projection of its feature's values (its lookback window, or one value) plus a learned
    embedding of which feature it is; the encoder's outputs are mean-pooled.
    """

    def __init__(self, features: int, values_per_token: int, d_model: int, heads: int, ff_dim: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.project = nn.Linear(values_per_token, d_model)
        self.position = nn.Parameter(torch.zeros(1, features, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(
            layer, num_layers,
            enable_nested_tensor=False)  # tkplan: ignore[constructor_kwarg] -- every token is real: nothing to pack
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(self.encoder(self.project(tokens) + self.position)).mean(dim=1)


class Transformer(nn.Module):
    """Self-attention across features, each feature's token built from its lookback window.

    The tokens are the features (the seed's "sequence" of the batch-scaling rule is the feature count), so
    the planner's ``seq_batch_scaling`` sizes the batch by the number of features.
    """

    def __init__(self, features: int, outputs: int, lookback: int, d_model: int, heads: int, ff_dim: int,
                 num_layers: int, dropout: float, n_symbols: int, asset_embedding_dim: int) -> None:
        super().__init__()
        self.tokens = _FeatureTokens(features, lookback, d_model, heads, ff_dim, num_layers, dropout)
        self.embed = AssetEmbedding(n_symbols, asset_embedding_dim)
        self.head = nn.Linear(d_model + asset_embedding_dim, outputs)

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(self.tokens(x.transpose(1, 2)), symbols))


class TabTransformer(Transformer):
    """Transformer over the features of one row: each token is one feature's value, projected."""

    def __init__(self, features: int, outputs: int, d_model: int, heads: int, ff_dim: int, num_layers: int,
                 dropout: float, n_symbols: int, asset_embedding_dim: int) -> None:
        super().__init__(features, outputs, 1, d_model, heads, ff_dim, num_layers, dropout, n_symbols,
                         asset_embedding_dim)

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(self.tokens(x.unsqueeze(2)), symbols))


class VAE(nn.Module):
    """A variational autoencoder of the features whose latent mean also predicts the target.

    Training minimises the target loss plus ``beta`` × KL(q(z|x) ‖ N(0, I)) plus ``reconstruction_weight`` ×
    the features' reconstruction error (`aux_loss`); the prediction reads the latent mean (no sampling), so
    it is deterministic. ``exp_bounds`` clamp the log-variance before it is exponentiated.
    """

    def __init__(self, features: int, outputs: int, hidden_dim: int, latent_dim: int, dropout: float, beta: float,
                 reconstruction_weight: float, exp_bounds: Sequence[float]) -> None:
        super().__init__()
        self.encoder = _dense([features, hidden_dim], dropout, False)
        self.mean = nn.Linear(hidden_dim, latent_dim)
        self.log_var = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(_dense([latent_dim, hidden_dim], dropout, False), nn.Linear(hidden_dim, features))
        self.head = nn.Linear(latent_dim, outputs)
        self.beta, self.reconstruction_weight = beta, reconstruction_weight
        self.low, self.high = float(exp_bounds[0]), float(exp_bounds[1])
        self._aux: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(x)
        mean, log_var = self.mean(hidden), self.log_var(hidden).clamp(self.low, self.high)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var) if self.training else mean
        if self.training:
            kl = -0.5 * torch.mean(torch.sum(1 + log_var - mean.pow(2) - log_var.exp(), dim=1))
            rebuilt = self.decoder(z)
            self._aux = self.beta * kl + self.reconstruction_weight * torch.mean((rebuilt - x) ** 2)
        return self.head(mean if not self.training else z)

    def aux_loss(self) -> torch.Tensor:
        """The KL and reconstruction terms of the last training forward pass."""
        assert self._aux is not None
        return self._aux


class GAN(nn.Module):
    """A conditional GAN: a generator of the target given the features and noise, against a discriminator.

    The discriminator scores (features, target) pairs as real or generated; the generator minimises the
    target loss plus ``adversarial_weight`` × its adversarial loss (`train_batch` of the loop). The
    prediction is the generator's output with zero noise.
    """

    def __init__(self, features: int, outputs: int, generator_hidden_dim: int, discriminator_hidden_dim: int,
                 noise_dim: int, dropout: float) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.generator = nn.Sequential(
            _dense([features + noise_dim, generator_hidden_dim, generator_hidden_dim], dropout, False),
            nn.Linear(generator_hidden_dim, outputs))
        self.discriminator = nn.Sequential(
            _dense([features + outputs, discriminator_hidden_dim], dropout, False),
            nn.Linear(discriminator_hidden_dim, 1))

    def generate(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.generator(torch.cat([x, noise], dim=1))

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        noise = torch.zeros(x.shape[0], self.noise_dim, device=x.device, dtype=x.dtype)
        return self.generate(x, noise)


class MultiTask(nn.Module):
    """A shared trunk and one linear head per target."""

    def __init__(self, features: int, outputs: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.trunk = _dense([features, hidden_dim, hidden_dim], dropout, False)
        self.heads = nn.ModuleList(nn.Linear(hidden_dim, 1) for _ in range(outputs))

    def forward(self, x: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        shared = self.trunk(x)
        return torch.cat([head(shared) for head in self.heads], dim=1)


SEQUENCE_NETS = (CNN1D, LSTM, Transformer)
"""Networks that read a (batch, lookback, features) window."""

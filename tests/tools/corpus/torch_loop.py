"""A plain PyTorch training loop for the sequence model."""

import math

import torch
from torch import nn


class SeqModel(nn.Module):
    def __init__(self, n_features, hidden):
        super().__init__()
        self.rnn = nn.LSTM(n_features, hidden, batch_first=True)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(self.drop(out[:, -1, :]))


def make_optimizer(model):
    groups = {"learning_rate": 3e-4, "momentum": 0.9}
    return torch.optim.SGD(model.parameters(), lr=groups["learning_rate"], momentum=groups["momentum"])


def train(model, batches, val_batches, max_epochs=None, limit=None):
    if max_epochs is None:
        max_epochs = 40
    if limit is None:
        limit = 500
    patience = 6
    optimizer = make_optimizer(model)
    loss_fn = nn.MSELoss()
    best = math.inf
    prev = math.inf
    stale = 0
    for epoch in range(max_epochs):
        model.train()
        for step, (x, y) in enumerate(batches):
            if step >= limit:
                break
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
            optimizer.step()
        val = evaluate(model, val_batches)
        if val > prev - 1e-4:
            stale += 1
        else:
            stale = 0
        prev = val
        best = min(best, val)
        if stale >= patience:
            print(f"stopping at epoch {epoch + 1}")
            break
    return best


@torch.no_grad()
def evaluate(model, batches):
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        total += float(((model(x) - y) ** 2).sum())
        count += y.shape[0]
    return total / max(count, 1)

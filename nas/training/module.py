"""The LightningModule that trains any compiled candidate network with the paper's protocol."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from nas.training.record import NonFiniteLossError

_PLAIN = (str, int, float, type(None))  # bool is an int


class CandidateModule(L.LightningModule):
    """Wrap a network mapping (B, C, H, W) to (B, num_classes) logits.

    Training: cross-entropy, ``SGD(lr, momentum, weight_decay)``, ``CosineAnnealingLR(T_max=
    max_epochs)`` stepped once per epoch (no warm-up), as in the paper's trainer. A non-finite
    loss raises :class:`NonFiniteLossError` *before* the backward pass (the paper breaks out of
    training at the first NaN loss).

    ``keep_previous_epoch`` (``TrainerConfig.nan_policy="previous_epoch"``): the paper then keeps
    the validation score of the last completed epoch. To give that without validating every
    epoch, each epoch start (from epoch 2) copies the network's parameters and buffers into a
    snapshot on the same device (the copy tensors are allocated once and reused; no RNG is
    used, so runs without a NaN are unchanged). After the NaN, :meth:`rewind_to_previous_epoch`
    restores that copy for the caller to evaluate. When the previous epoch was evaluated anyway
    (``val_every_n_epochs``), its accuracy is kept instead and no copy is made.

    Evaluation (Lightning's validation loop, run on the valid split in search mode and on the test
    split in final mode): argmax accuracy over the whole split, counted on the device and read
    back once per evaluation. ``eval_acc`` holds the latest value; ``history`` one row per epoch,
    also handed to ``on_epoch_end(row)`` when given (train.py logs it).

    Nothing is synchronised with the device per step except the NaN check (one boolean per step,
    as in the paper's loop); losses are summed on the device and read once per epoch.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        lr: float = 0.04,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        max_epochs: int = 16,
        eval_name: str = "val",
        on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
        keep_previous_epoch: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.max_epochs = int(max_epochs)
        self.eval_name = eval_name  # metric prefix: "val" or "test"
        self.on_epoch_end = on_epoch_end  # e.g. send each history row to a RunLogger
        self.criterion = nn.CrossEntropyLoss()
        self.eval_acc: float | None = None
        self.history: list[dict[str, Any]] = []
        self._loss_sum: torch.Tensor | None = None
        self._steps = 0
        self._correct: torch.Tensor | None = None
        self._seen = 0
        self._epoch_t0 = 0.0
        self._epoch_lr: float | None = None
        self._evaluated_this_epoch = False
        self.keep_previous_epoch = bool(keep_previous_epoch)
        # state after the last completed epoch: its 1-based number, its accuracy when it was
        # evaluated, else a snapshot {name: tensor} of the parameters and buffers then.
        self._previous_epoch = 0
        self._previous_acc: float | None = None
        self._snapshot: dict[str, torch.Tensor] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets bookkeeping attributes (e.g. `_current_fx_name`) several times per step;
        # nn.Module.__setattr__ checks each against parameters/buffers/modules (~9 us a call,
        # ~8 ms per tiny candidate). Plain values that cannot be any of those take the fast path.
        if isinstance(value, _PLAIN) and name not in self.__dict__.get("_parameters", ()) \
                and name not in self.__dict__.get("_buffers", ()) and name not in self.__dict__.get("_modules", ()):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    # --- training ------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._epoch_t0 = time.perf_counter()  # the snapshot counts towards the epoch's seconds
        if self.keep_previous_epoch and self.current_epoch > 0:
            self._keep_previous_epoch()  # reads `_evaluated_this_epoch` of the epoch that ended
        self._loss_sum = torch.zeros((), device=self.device)
        self._steps = 0
        self._evaluated_this_epoch = False
        # Read here: Lightning steps epoch-interval schedulers before `on_train_epoch_end`.
        self._epoch_lr = self.optimizers().param_groups[0]["lr"]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.criterion(self.net(x), y)
        if not torch.isfinite(loss):
            value = loss.item()
            raise NonFiniteLossError(
                f"non-finite training loss ({value}) at epoch {self.current_epoch + 1}, "
                f"step {batch_idx + 1}",
                epoch=self.current_epoch + 1, step=batch_idx + 1, loss=value,
            )
        self._loss_sum += loss.detach()
        self._steps += 1
        return loss

    def on_train_epoch_end(self) -> None:
        # In Lightning 2.x this runs after the end-of-epoch evaluation, so the row holds both.
        train_loss = float(self._loss_sum) / max(1, self._steps) if self._loss_sum is not None else None
        row: dict[str, Any] = {
            "epoch": self.current_epoch + 1,
            "train_loss": train_loss,
            "lr": self._epoch_lr,  # the learning rate this epoch trained with
            "seconds": time.perf_counter() - self._epoch_t0,
        }
        if self._evaluated_this_epoch:
            row[f"{self.eval_name}_acc"] = self.eval_acc
        self.history.append(row)
        if self.on_epoch_end is not None:
            self.on_epoch_end(row)
        if train_loss is not None:
            self.log("train/loss", train_loss, prog_bar=True)

    # --- the state after the previous epoch (NaN policy "previous_epoch") ----------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer of the network (persistent or not), by qualified name."""
        state = dict(self.net.named_parameters())
        state.update(self.net.named_buffers())
        return state

    @torch.no_grad()
    def _keep_previous_epoch(self) -> None:
        """At the start of epoch ``current_epoch + 1``: remember the state after the epoch before."""
        self._previous_epoch = self.current_epoch
        if self._evaluated_this_epoch:  # still the flag of the epoch that just ended
            self._previous_acc = self.eval_acc
            self._snapshot = {}
            return
        self._previous_acc = None
        old, new = self._snapshot, {}
        for name, tensor in self._state_tensors().items():
            kept = old.get(name)
            if kept is None or kept.shape != tensor.shape or kept.dtype != tensor.dtype \
                    or kept.device != tensor.device:
                kept = torch.empty_like(tensor, memory_format=torch.preserve_format)
            new[name] = kept.copy_(tensor.detach())
        self._snapshot = new

    @torch.no_grad()
    def rewind_to_previous_epoch(self) -> tuple[int, float | None]:
        """After a NaN loss: ``(e, acc)`` for the last completed epoch ``e`` (0: none).

        ``acc`` is its accuracy when that epoch was evaluated; otherwise ``None`` and the network's
        parameters and buffers are set back to the snapshot taken after epoch ``e``, ready to be
        evaluated (e.g. ``Trainer.validate``), which gives the accuracy a per-epoch validation
        would have measured then.
        """
        if self._previous_epoch == 0 or self._previous_acc is not None:
            return self._previous_epoch, self._previous_acc
        if not self._snapshot:
            raise RuntimeError("no snapshot of the previous epoch (keep_previous_epoch is off)")
        current = self._state_tensors()
        if set(current) != set(self._snapshot):
            raise RuntimeError("the network's parameters/buffers changed since the previous epoch")
        for name, tensor in current.items():
            kept = self._snapshot[name]
            if tensor.shape != kept.shape:
                raise RuntimeError(f"{name} changed shape since the previous epoch")
            tensor.copy_(kept)  # also across devices (Lightning's teardown may have moved the net)
        return self._previous_epoch, None

    # --- evaluation ----------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._correct = torch.zeros((), dtype=torch.long, device=self.device)
        self._seen = 0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self._correct += (logits.argmax(dim=-1) == y).sum()
        self._seen += int(y.shape[0])

    def on_validation_epoch_end(self) -> None:
        self.eval_acc = float(self._correct) / max(1, self._seen)
        self._evaluated_this_epoch = True
        self.log(f"{self.eval_name}/acc", self.eval_acc, prog_bar=True)

    # --- optimisation --------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.SGD(
            self.net.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

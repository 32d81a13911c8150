"""The LightningModule: U-Net + cross-entropy and Dice loss, validated as the paper measured.

Validation predicts each validation subject's session-1 volume slice by slice, resizes the probabilities
back to the native slice grid, thresholds at 0.5 and scores a 3D Dice over the whole volume; ``val/dsc``
is the mean over subjects. The same mask after orphan removal (paper 2.6) gives
``val/dsc_orphan_removed``. ``history`` holds every epoch's scores per subject (``<subject>`` and
``orphan_removed/<subject>``); ``best`` the epoch with the highest ``val/dsc`` (``best.ckpt``). The paper
scores "the model resulting from each run", so the analysis uses the last epoch by default.

Example:
    >>> m = DiscSegmenter(net={"base_filters": 4, "depth": 2}, optim={"lr": 1e-3}, context_slices=1)
    >>> m.net.in_channels
    3
"""

from __future__ import annotations

import lightning as L
import torch
from monai.losses import DiceCELoss

from discnet.data.slices import from_slices
from discnet.evaluation.metrics import dice
from discnet.inference.probability import disc_probability, segment_logits
from discnet.models.checkpoint import build_net
from discnet.models.optimizer import build_optimizer
from discnet.postprocess import disc_mask
from discnet.spine import DEFAULT_LABELS


class DiscSegmenter(L.LightningModule):
    """Trains a :class:`~discnet.models.unet.UNet` on (image, disc mask) slices.

    Args:
        net: U-Net keyword arguments (stored in the checkpoint, so the model can be rebuilt).
        optim: the optimizer and learning-rate schedule (``conf/optim``; see
            :func:`~discnet.models.optimizer.build_optimizer`).
        loss: ``include_background`` of the Dice term (MONAI's default, true, also averages the
            background's Dice, halving the weight on the disc), ``lambda_dice``, ``lambda_ce``.
        context_slices: neighbouring slices on each side as extra input channels (2.5D): the network
            gets 2k+1 input channels (stored in ``net``, so prediction feeds it alike).
        input: the input preset the model is trained on (stored so that prediction prepares scans alike).
        image_size: side of the square network input (stored likewise).
        channels_last: channels-last memory format for the network and its inputs.
        val_batch_size: slices per forward pass during validation.
        threshold: probability above which a voxel is disc.
        levels: ``{level name: label value}`` of the masks prediction writes (stored likewise; None: the
            default 1 = L5-S1 ... 5 = L1-L2).
        surplus: which discs prediction keeps when it finds more than expected (``largest`` or ``anchor``;
            stored likewise, see :func:`~discnet.postprocess.levels.label_levels`).
        tta: the test-time augmentation prediction applies by default (a key of
            :data:`~discnet.spine.FLIPS`; stored likewise).
    """

    def __init__(
        self,
        net: dict,
        optim: dict,
        loss: dict | None = None,
        context_slices: int = 0,
        input: dict | None = None,
        image_size: int | None = None,
        channels_last: bool = False,
        val_batch_size: int = 16,
        threshold: float = 0.5,
        levels: dict[str, int] | None = None,
        surplus: str = "largest",
        tta: str = "none",
    ):
        super().__init__()
        net = {**net, "in_channels": 1 + 2 * int(context_slices)}
        levels = dict(DEFAULT_LABELS if levels is None else levels)
        self.save_hyperparameters()
        self.net = build_net(net)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # The paper's loss: the sum of cross-entropy and Dice loss (Dice over the batch, so that slices
        # without disc do not give undefined per-slice Dice terms).
        loss = dict(loss or {})
        self.loss = DiceCELoss(
            to_onehot_y=True,
            softmax=True,
            batch=True,
            include_background=bool(loss.get("include_background", True)),
            lambda_dice=float(loss.get("lambda_dice", 1.0)),
            lambda_ce=float(loss.get("lambda_ce", 1.0)),
        )
        self.val_scores: dict[str, float] = {}
        self.val_scores_orphan_removed: dict[str, float] = {}
        self.history: list[dict] = []
        self.best: dict = {"dsc": float("-inf"), "epoch": None, "subjects": {}, "subjects_orphan_removed": {}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return segment_logits(self.net, x)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss = self.loss(self(images), labels[:, None].long())
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(images))
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_scores, self.val_scores_orphan_removed = {}, {}

    def validation_step(self, volume, batch_idx):
        prob = disc_probability(
            [self.net],
            volume.images,
            volume.native_shape,
            batch_size=self.hparams.val_batch_size,
            device=self.device,
            precision="bf16" if "bf16" in str(self.trainer.precision) else "32",
            channels_last=self.hparams.channels_last,
            fit=dict(self.hparams.input or {}).get("fit", "stretch"),
        )
        threshold = self.hparams.threshold
        self.val_scores[volume.subject] = dice(disc_mask(prob, threshold, orphan_removal=False), volume.native_labels)
        cleaned = disc_mask(from_slices(prob), threshold)  # slices first, as on the canonical grid
        self.val_scores_orphan_removed[volume.subject] = dice(cleaned, from_slices(volume.native_labels))

    @staticmethod
    def _gathered(scores: dict[str, float]) -> dict[str, float]:
        """Per-subject scores of every process (DDP splits the validation volumes between them)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return dict(scores)
        parts = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(parts, scores)
        return {subject: score for part in parts for subject, score in part.items()}

    def on_validation_epoch_end(self) -> None:
        self.val_scores = self._gathered(self.val_scores)
        self.val_scores_orphan_removed = self._gathered(self.val_scores_orphan_removed)
        if not self.val_scores:
            return
        mean = sum(self.val_scores.values()) / len(self.val_scores)
        cleaned = sum(self.val_scores_orphan_removed.values()) / len(self.val_scores_orphan_removed)
        self.log("val/dsc", mean, prog_bar=True)
        self.log("val/dsc_orphan_removed", cleaned)
        if self.trainer.sanity_checking:
            return
        row = {"epoch": self.current_epoch, "val/dsc": mean, "val/dsc_orphan_removed": cleaned, **self.val_scores}
        row.update({f"orphan_removed/{s}": d for s, d in self.val_scores_orphan_removed.items()})
        self.history.append(row)
        if mean > self.best["dsc"]:
            self.best = {
                "dsc": mean,
                "dsc_orphan_removed": cleaned,
                "epoch": self.current_epoch,
                "subjects": dict(self.val_scores),
                "subjects_orphan_removed": dict(self.val_scores_orphan_removed),
            }

    def configure_optimizers(self):
        trainer = self.trainer
        return build_optimizer(
            self.parameters(), dict(self.hparams.optim), trainer.estimated_stepping_batches, trainer.max_epochs
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["discnet"] = {"history": self.history, "best": self.best}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("discnet", {})
        self.history = list(state.get("history", []))
        self.best = dict(state.get("best", self.best))

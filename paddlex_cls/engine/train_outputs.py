"""What a training run leaves beside its checkpoints: label_dict.txt, train_result.json, plots."""
from __future__ import annotations

import glob
import os
from typing import Any, Dict, List, Optional

from ..figures import new_figure, save_figure
from ..fileio import atomic_write_json, atomic_write_text


def write_label_dict(out_dir: str, labels: List[str]) -> None:
    atomic_write_text(os.path.join(out_dir, "label_dict.txt"), "".join(f"{i} {n}\n" for i, n in enumerate(labels)))


def model_entry(out_dir: str, name: str, score: Optional[float]) -> Dict[str, Any]:
    """One ``models`` entry of train_result.json: score and the files of checkpoint ``name`` (relative paths)."""
    entry: Dict[str, Any] = {"score": score}
    for ext in ("pdparams", "pdopt", "pdstates", "pdema"):
        if os.path.isfile(os.path.join(out_dir, name, f"{name}.{ext}")):
            entry[ext] = f"{name}/{name}.{ext}"
    inf = os.path.join(out_dir, name, "inference")
    if os.path.isfile(os.path.join(inf, "inference.yml")):
        entry["inference_config"] = f"{name}/inference/inference.yml"
        for fname in ("inference.json", "inference.pdmodel"):
            if os.path.isfile(os.path.join(inf, fname)):
                entry["pdmodel" if fname.endswith("pdmodel") else "json"] = f"{name}/inference/{fname}"
        entry["pdiparams"] = f"{name}/inference/inference.pdiparams"
    return entry


def newest_saved_epochs(out_dir: str, epochs, count: int = 5) -> List[int]:
    """The newest ``count`` epochs that have an ``epoch_N/`` folder (train_result's last_1..last_5)."""
    saved = sorted((e for e in epochs if os.path.isdir(os.path.join(out_dir, f"epoch_{e}"))), reverse=True)
    return saved[:count]


def write_train_result(out_dir: str, model_name: str, epoch_scores: Dict[int, Optional[float]],
                       best_score: Optional[float], done: bool, extra: Optional[Dict[str, Any]] = None
                       ) -> Dict[str, Any]:
    """train_result.json per the PaddleX contract: last_1..last_5 are the newest saved epochs; ``extra`` adds keys
    of ours (e.g. ``early_stop``)."""
    models = {f"last_{i}": model_entry(out_dir, f"epoch_{e}", epoch_scores[e])
              for i, e in enumerate(newest_saved_epochs(out_dir, epoch_scores), 1)}
    if os.path.isdir(os.path.join(out_dir, "best_model")):
        models["best"] = model_entry(out_dir, "best_model", best_score)
    vdl = sorted(glob.glob(os.path.join(out_dir, "vdlrecords.*.log")))
    result = {
        "model_name": model_name,
        "label_dict": "label_dict.txt",
        "train_log": "train.log",
        "visualdl_log": os.path.basename(vdl[-1]) if vdl else None,
        "config": "config.yaml",
        "models": models,
        "done_flag": done,
        **(extra or {}),
    }
    atomic_write_json(os.path.join(out_dir, "train_result.json"), result)
    return result


def plot_training_curves(history: List[Dict[str, float]], path: str) -> None:
    """Loss (train and val) and top-1 (train and val) per epoch, side by side."""
    fig = new_figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    for key, ax, label in (("train_loss", ax_loss, "train"), ("val_loss", ax_loss, "val"),
                           ("train_top1", ax_acc, "train"), ("val_top1", ax_acc, "val")):
        pts = [(e, h[key]) for e, h in zip(epochs, history) if h.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title="top-1 accuracy", xlabel="epoch", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path, dpi=100, bbox_inches="tight")

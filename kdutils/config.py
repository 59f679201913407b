"""Run configurations: a frozen dataclass per run whose stable hash names its record in the results store."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from numbers import Integral, Real
from typing import Any

from kdutils.losses import check_alpha, check_direction, check_smoothing, check_tau

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine")


def check_int(value: object, name: str, minimum: int | None = None) -> int:
    """An integer (not a bool, not 1.5, which would be truncated silently), optionally >= minimum."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


#: Seeds go to torch.manual_seed / torch.Generator.manual_seed (which take at most 2**64 - 1) and are offset by
#: small numbers on the way (a split's test subset uses split_seed + 1), so they are kept to 0..2**63-1.
MAX_SEED = 2**63 - 1


def check_seed(value: object, name: str) -> int:
    """A seed torch accepts: an integer in 0..2**63-1 (2**64 used to pass here and fail inside torch)."""
    seed = check_int(value, name)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in 0..2**63-1, got {value!r}")
    return seed


def check_number(value: object, name: str) -> float:
    """A finite real number (not a bool, not a string such as 'abc')."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")
    return float(value)


@dataclass(frozen=True)
class TrainConfig:
    """How a model is optimised. Augmentation strings are parsed by `device_loader.parse_augment`."""

    epochs: int = 1
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "none"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    augment: str = "none"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        check_int(self.epochs, "epochs", 1)
        check_int(self.batch_size, "batch_size", 1)
        if not check_number(self.lr, "lr") > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("momentum", "weight_decay", "gamma"):
            if check_number(getattr(self, name), name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for m in self.milestones:
            check_int(m, "each milestone", 1)
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))


@dataclass(frozen=True)
class DataConfig:
    """Which examples a run trains and is evaluated on.

    `n_train` takes a seeded random subset of the training split (the cpu/smoke profiles);
    `val_size` holds out a deterministic validation set; `fold`/`k_folds` select a k-fold partition
    of the training split, whose held-out fold is then the evaluation set's companion `val` split.
    """

    dataset: str = "mnist"
    n_train: int | None = None
    n_test: int | None = None
    val_size: int = 0
    fold: int | None = None
    k_folds: int = 5
    split_seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Reject what would run silently on the wrong data (n_train=-5 would train on 59,995 images)."""
        from kdutils.data.registry import check_dataset_name

        check_dataset_name(self.dataset)
        for name in ("n_train", "n_test"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), f"{name} (None = the whole split)", 1)
        check_int(self.val_size, "val_size", 0)
        check_int(self.k_folds, "k_folds", 2)
        if self.fold is not None:
            check_int(self.fold, "fold", 0)
            if self.fold >= self.k_folds:
                raise ValueError(f"fold must be in 0..{self.k_folds - 1} (k_folds={self.k_folds}), got {self.fold}")
        check_seed(self.split_seed, "split_seed")
        if not isinstance(self.options, dict):
            raise ValueError(f"options must be a dict of loader keyword arguments, got {self.options!r}")


@dataclass(frozen=True)
class RunConfig:
    """One training run. `alpha` is the weight on the KD term; `teacher` is the run that produced the teacher."""

    experiment: str
    role: str
    model: str
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    teacher: "RunConfig | None" = None
    tau: float = 1.0
    alpha: float = 0.0
    kd_direction: str = "forward"
    label_smoothing: float = 0.0
    seed: int = 0
    profile: str = "cpu"
    invariance: str | None = None

    def __post_init__(self) -> None:
        check_tau(self.tau)
        check_alpha(self.alpha)
        object.__setattr__(self, "tau", float(self.tau))
        object.__setattr__(self, "alpha", float(self.alpha))
        object.__setattr__(self, "label_smoothing", check_smoothing(self.label_smoothing))
        check_direction(self.kd_direction)
        check_seed(self.seed, "seed")
        if self.alpha > 0 and self.teacher is None:
            raise ValueError(f"alpha={self.alpha} puts weight on a KD term, but the run names no teacher")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """A stable 16-hex-digit hash of everything that defines the run (the teacher's config included)."""
        return config_hash(self.to_dict())

    def with_(self, **changes: Any) -> "RunConfig":
        return replace(self, **changes)


def config_hash(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def run_config_from_dict(payload: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from its recorded dict (the inverse of `to_dict`)."""
    payload = dict(payload)
    payload["data"] = DataConfig(**payload["data"])
    payload["train"] = TrainConfig(**payload["train"])
    if payload.get("teacher") is not None:
        payload["teacher"] = run_config_from_dict(payload["teacher"])
    return RunConfig(**payload)

"""A wall-clock training budget for any Hugging Face ``Trainer`` (ours and sentence-transformers').

:class:`TimeBudget` stops training at a deadline and sets the learning rate from the *time* used,
not the step count: linear warm-up over the first ``warmup`` share of the time the trainer has
before the deadline, then linear decay to zero at the deadline. Two trainers given the same
deadline therefore both finish their schedule, whatever their step speed or the machine's load
(steps chosen from a measured speed would not: the load on this shared machine changes by 2x
within minutes). The trainer's own scheduler must be ``constant``; this callback overrides its
rate just before each optimiser step.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback


class TimeBudget(TrainerCallback):
    """Stop at ``deadline`` (a ``time.perf_counter()`` value) with a time-based warm-up and linear decay.

    :param deadline: When training must end; everything spent before training starts (mining,
        loading) is already off the budget.
    :param warmup: Share of the training time spent warming the learning rate up.
    """

    def __init__(self, deadline: float, warmup: float = 0.1) -> None:
        self.deadline = deadline
        self.warmup = warmup
        self.started = 0.0
        self.step_started = 0.0
        self.last_step = 0.0
        self.rates: list[tuple[int, float]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()
        if args.lr_scheduler_type != "constant":
            raise ValueError("TimeBudget sets the learning rate itself: use lr_scheduler_type='constant'")

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_started = time.perf_counter()

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        share = (time.perf_counter() - self.started) / max(self.deadline - self.started, 1e-9)
        factor = share / self.warmup if share < self.warmup else max(0.0, (1 - share) / (1 - self.warmup))
        for group in optimizer.param_groups:
            group["lr"] = args.learning_rate * factor
        self.rates.append((state.global_step + 1, args.learning_rate * factor))

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.last_step = now - self.step_started
        # Stop when the next step would end past the deadline by more than half a step.
        if now + 0.5 * self.last_step >= self.deadline:
            control.should_training_stop = True
        return control


class BudgetFromTrainStart(TimeBudget):
    """:class:`TimeBudget` whose deadline is set when training begins (the checks before it are off the clock)."""

    def __init__(self, seconds: float, warmup: float = 0.1) -> None:
        super().__init__(deadline=0.0, warmup=warmup)
        self.seconds = seconds

    def on_train_begin(self, args, state, control, **kwargs):
        self.deadline = time.perf_counter() + self.seconds
        return super().on_train_begin(args, state, control, **kwargs)

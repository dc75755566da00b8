"""The progress bar (tqdm), drawn per epoch when ``fit(progress=True)``."""

from __future__ import annotations


class Progress:
    """A tqdm bar over ``total`` epochs, or nothing when ``enabled`` is False."""

    def __init__(self, enabled: bool, total: int):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="epoch", dynamic_ncols=True, leave=True)

    def advance(self, epochs: int, loss=None) -> None:
        """``epochs`` more done; ``loss`` (the latest) is shown beside the bar."""
        if self.bar is None:
            return
        # The loss first: update() draws the bar, with the postfix set before it.
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
        self.bar.update(epochs)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

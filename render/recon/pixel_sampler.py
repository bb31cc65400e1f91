"""Uncertainty-guided pixel sampling (DebSDF sec. 3.3): P = (1 - r) U / sum U + r / N per image, refreshed on a
schedule from per-pixel uncertainty maps kept at a reduced resolution (cells of `cell` x `cell` pixels)."""

from __future__ import annotations

import torch


def sampler_ratio(config, progress: float) -> float:
    """The guided sampler's uniform share r at `progress`: config.uniform_ratio, then over the first half of the
    last `uniform_finish` of the budget a linear ramp to `uniform_finish_ratio` (1: uniform pixels to the end)."""
    start = 1.0 - config.uniform_finish
    if config.uniform_finish <= 0 or progress <= start:
        return config.uniform_ratio
    t = min(1.0, (progress - start) / (0.5 * config.uniform_finish))
    return config.uniform_ratio + t * (config.uniform_finish_ratio - config.uniform_ratio)


class PixelSampler:
    """Draws training pixels. Each batch takes `images_per_batch` training images uniformly, then
    `rays_per_image` cells of each by P (uniform when `guided` is off), then a uniform pixel inside each cell.

    The uncertainty maps U (one value per cell) are an exponential moving average of the rendered uncertainty of
    the training rays that fell in the cell (cheaper on a CPU than DebSDF's re-rendering of all views); P is
    rebuilt from them only by `refresh()`, which the trainer calls on its schedule.
    """

    def __init__(self, train_indices: list[int], height: int, width: int, cell: int = 4, uniform_ratio: float = 0.3,
                 guided: bool = True, ema: float = 0.7):
        self.train = torch.tensor(train_indices, dtype=torch.int64)
        self.height, self.width, self.cell = height, width, cell
        self.gh, self.gw = -(-height // cell), -(-width // cell)
        self.uniform_ratio, self.guided, self.ema = float(uniform_ratio), guided, float(ema)
        self.maps = torch.ones(len(train_indices), self.gh * self.gw)
        self.seen = torch.zeros(len(train_indices), self.gh * self.gw, dtype=torch.bool)
        self.probs = torch.full_like(self.maps, 1.0 / self.maps.shape[1])
        self.conflict: torch.Tensor | None = None  # (images, cells) fraction of flagged pixels (set_conflict)
        self.conflict_weight = 0.0
        # Pixels per cell: the last row/column of cells can be partial.
        ch = torch.full((self.gh,), cell).clamp(max=height - torch.arange(self.gh) * cell)
        cw = torch.full((self.gw,), cell).clamp(max=width - torch.arange(self.gw) * cell)
        self.cell_h, self.cell_w = ch, cw

    @classmethod
    def from_config(cls, train_indices: list[int], height: int, width: int, config) -> "PixelSampler":
        """The sampler a ReconConfig asks for (sampler_cell, uniform_ratio, uncertainty_sampling)."""
        return cls(train_indices, height, width, config.sampler_cell, config.uniform_ratio,
                   config.uncertainty_sampling)

    def probabilities(self, maps: torch.Tensor) -> torch.Tensor:
        """P = (1 - r) U / sum U + r / N per row of `maps` (N cells)."""
        n = maps.shape[-1]
        return (1 - self.uniform_ratio) * maps / maps.sum(-1, keepdim=True).clamp(min=1e-12) + self.uniform_ratio / n

    def refresh(self) -> None:
        if not self.guided:
            return
        # Cells never rendered yet get the mean of the seen ones of their image (else they'd keep the initial 1).
        # An image with no cell seen yet stays uniform (a 0 there would leave P = r / N, summing to r, and
        # importance() would weigh its rays 1 / r).
        count = self.seen.sum(1, keepdim=True)
        seen_mean = torch.where(count > 0, (self.maps * self.seen).sum(1, keepdim=True) / count.clamp(min=1), 1.0)
        maps = torch.where(self.seen, self.maps, seen_mean.expand_as(self.maps))
        if self.conflict is not None and self.conflict_weight > 0:
            maps = maps + self.conflict_weight * self.conflict * maps.mean(1, keepdim=True)
        self.probs = self.probabilities(maps)

    def set_conflict(self, flags: torch.Tensor, weight: float) -> None:
        """Static extra value per cell, from (images, H, W) bool per-pixel flags of the training images (in
        `train_indices` order): + weight x the cell's flagged fraction x the image's mean value, added at every
        refresh (the flags mark pixels whose prior is wrong, which the rendered uncertainty misses)."""
        h, w = self.gh * self.cell, self.gw * self.cell
        padded = torch.zeros(flags.shape[0], h, w)
        padded[:, :self.height, :self.width] = flags.float()
        frac = torch.nn.functional.avg_pool2d(padded[:, None], self.cell)[:, 0]
        area = (self.cell_h[:, None] * self.cell_w[None, :]).float() / self.cell ** 2  # partial cells
        self.conflict = (frac / area).reshape(flags.shape[0], -1)
        self.conflict_weight = float(weight)
        self.refresh()

    def sample(self, images_per_batch: int, rays_per_image: int, generator: torch.Generator | None = None):
        """(image_index (M,) dataset indices, pixel_xy (M,2) float pixel coordinates, slot (M,), cell (M,))."""
        k = min(images_per_batch, len(self.train))
        slots = torch.randperm(len(self.train), generator=generator)[:k]
        if self.guided:
            cells = torch.multinomial(self.probs[slots], rays_per_image, replacement=True, generator=generator)
        else:
            cells = torch.randint(0, self.gh * self.gw, (k, rays_per_image), generator=generator)
        slot = slots[:, None].expand_as(cells).reshape(-1)
        cells = cells.reshape(-1)
        cy, cx = cells // self.gw, cells % self.gw
        u = torch.rand(cells.shape[0], 2, generator=generator)
        x = cx * self.cell + torch.floor(u[:, 0] * self.cell_w[cx]) + 0.5
        y = cy * self.cell + torch.floor(u[:, 1] * self.cell_h[cy]) + 0.5
        return self.train[slot], torch.stack([x, y], -1).float(), slot, cells

    def importance(self, slot: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """(M,) 1 / (N P) of each drawn cell: the weight that gives a mean over these rays the expectation it would
        have under the unguided sampler (cells uniformly; all ones when not guided)."""
        if not self.guided:
            return torch.ones(cells.shape[0])
        return 1.0 / (self.probs[slot, cells] * self.probs.shape[1])

    @torch.no_grad()
    def update(self, slot: torch.Tensor, cells: torch.Tensor, values: torch.Tensor) -> None:
        """EMA of the rendered uncertainty of this batch's rays into their cells (values on any device)."""
        values = values.to(self.maps.device)
        flat = slot * self.maps.shape[1] + cells
        maps, seen = self.maps.view(-1), self.seen.view(-1)
        old = torch.where(seen[flat], maps[flat], values)
        maps[flat] = self.ema * old + (1 - self.ema) * values
        seen[flat] = True

    def state_dict(self) -> dict:
        state = {"maps": self.maps.clone(), "seen": self.seen.clone(), "probs": self.probs.clone()}
        if self.conflict is not None:
            state.update(conflict=self.conflict.clone(), conflict_weight=torch.tensor(self.conflict_weight))
        return state

    def load_state_dict(self, state: dict) -> None:
        self.maps, self.seen, self.probs = state["maps"].clone(), state["seen"].clone(), state["probs"].clone()
        if "conflict" in state:
            self.conflict, self.conflict_weight = state["conflict"].clone(), float(state["conflict_weight"])

    def heat_map(self, slot: int) -> torch.Tensor:
        """(gh, gw) sampling probability of one training image's cells, for the report."""
        return self.probs[slot].reshape(self.gh, self.gw)

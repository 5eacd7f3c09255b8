"""Request-length datasets as data (catalog/datasets/*.yaml): the length distribution of the
prompts and generations of a named benchmark dataset, and where every number comes from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Fields of a length distribution that carry a number and so need a source.
NUMBER_FIELDS = ("mean", "sigma", "min", "max")


class LengthDistribution(BaseModel):
    """Token lengths of one side (input or output) of a dataset's requests.

    ``lognormal``: a lognormal truncated to [min, max] (draws outside are redrawn, as the
    benchmarks drop out-of-range samples) whose mean AFTER truncation is ``mean``;
    ``fixed``: every request has ``mean`` tokens; ``unknown``: the sources state no
    distribution (simulating it needs the length given by the user).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["lognormal", "fixed", "unknown"]
    mean: float | None = Field(None, gt=0, description="Mean tokens per request.")
    sigma: float | None = Field(None, gt=0, description="Lognormal shape (std of ln length).")
    min: int = Field(1, ge=1, description="Fewest tokens a request has.")
    max: int | None = Field(None, ge=1, description="Most tokens a request has.")

    @model_validator(mode="after")
    def _check(self) -> LengthDistribution:
        if self.kind == "unknown" and (self.mean is not None or self.sigma is not None):
            raise ValueError("kind unknown states no mean or sigma")
        if self.kind != "unknown" and self.mean is None:
            raise ValueError(f"kind {self.kind} needs a mean")
        if self.kind == "lognormal" and self.sigma is None:
            raise ValueError("kind lognormal needs a sigma")
        if self.kind == "fixed" and self.sigma is not None:
            raise ValueError("kind fixed has no sigma")
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        hi = self.max if self.max is not None else float("inf")
        if self.mean is not None and not self.min <= self.mean <= hi:
            raise ValueError(f"mean ({self.mean}) must lie in [min, max] = [{self.min}, {hi}]")
        return self


class LengthDataset(BaseModel):
    """A named request-length dataset: input and output length distributions, the joint cap
    the benchmark applies, and one source sentence per stated number (``sources``: key
    ``input.mean``, ``output.sigma``, ``max_total_len``, … → what it rests on, or
    'assumed: …' and why)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    tokenizer: str | None = Field(None, description="Tokenizer the lengths are counted in.")
    samples: int | None = Field(None, ge=1, description="Requests in the dataset.")
    input: LengthDistribution
    output: LengthDistribution
    max_total_len: int | None = Field(
        None, ge=2, description="Pairs with input + output above this are dropped (redrawn).")
    sources: dict[str, str]

    @model_validator(mode="after")
    def _every_number_has_a_source(self) -> LengthDataset:
        needed = {f"{side}.kind" for side in ("input", "output")}
        for side in ("input", "output"):
            dist = getattr(self, side)
            needed |= {f"{side}.{f}" for f in NUMBER_FIELDS if f in dist.model_fields_set}
        needed |= {f for f in ("samples", "max_total_len") if f in self.model_fields_set}
        missing = sorted(needed - set(self.sources))
        if missing:
            raise ValueError(f"sources: no source for {', '.join(missing)}")
        stray = sorted(set(self.sources) - needed)
        if stray:
            raise ValueError(f"sources: {', '.join(stray)} name no stated number "
                             f"(allowed: {', '.join(sorted(needed))})")
        return self

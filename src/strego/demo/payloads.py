"""Payload types of the demo tasks: dataclasses and pydantic models, as users write them."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pydantic


@dataclasses.dataclass
class Email:
    to: str
    subject: str


@dataclasses.dataclass
class Image:
    url: str
    width: int


class Report(pydantic.BaseModel):
    name: str
    pages: int = pydantic.Field(ge=1)
    seconds: float = pydantic.Field(ge=0, description="how long the demo pretends to work")


class Payment(pydantic.BaseModel):
    order_id: int
    amount_cents: int = pydantic.Field(gt=0)
    card: Literal["ok", "declined", "flaky"] = "ok"


class Webhook(pydantic.BaseModel):
    url: str
    event: str

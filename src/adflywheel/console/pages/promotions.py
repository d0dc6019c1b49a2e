"""The console's promotions page."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

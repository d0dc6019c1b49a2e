"""The console's cycles page."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)

"""The self-learning cycle on demand, and the power levels (which loops run for an account).

``POST /api/ml/self-learning-cycle`` runs the caller's account as of an hour (default: the
clock's), or every account for an admin key. A completed hour answers its earlier report with
``skipped: true``; ``force`` re-runs it, and even then no budget action is applied twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from adflywheel.api.deps import CallerDep, Services, ServicesDep, SessionDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.cycle import AllAccountsCycleOut, CycleReportOut, PowerOut
from adflywheel.api.schemas.types import Timestamp
from adflywheel.cycle.context import CycleOptions
from adflywheel.cycle.power import active_loops, power_report
from adflywheel.cycle.scheduler import CycleRunner, on_demand_runner
from adflywheel.services.account_settings import set_loops

router = APIRouter(prefix="/api/ml", tags=["self-learning cycle"])


class CycleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: Timestamp | None = Field(
        None, description="Run as of this hour (ISO 8601 with offset); default: the current hour."
    )
    force: bool = Field(False, description="Re-run a completed hour (budgets never twice).")
    dry_run: bool = Field(False, description="Record decisions without applying them.")
    all_accounts: bool = Field(False, description="Every account (admin keys only).")


class LoopsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loops: list[int] = Field(max_length=7, description="Loop numbers to run, 1 to 7.")


def runner_for(services: Services) -> CycleRunner:
    return on_demand_runner(services.settings, services.factory, services.clock, services.platforms)


@router.post("/self-learning-cycle", responses=kinds(403, 409))
def self_learning_cycle(
    services: ServicesDep, caller: CallerDep, body: Annotated[CycleIn | None, Body()] = None
) -> CycleReportOut | AllAccountsCycleOut:
    body = body or CycleIn()
    if body.as_of is not None and body.as_of > services.clock.now():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"as_of {body.as_of.isoformat()} is in the future",
        )
    options = CycleOptions(as_of=body.as_of, force=body.force, dry_run=body.dry_run)
    runner = runner_for(services)
    if body.all_accounts:
        if not caller.is_admin:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail="all_accounts needs an admin API key"
            )
        reports = runner.run_all(options)
        return AllAccountsCycleOut.model_validate({"accounts": len(reports), "reports": reports})
    return CycleReportOut.model_validate(runner.run(caller.account_id, options))


@router.get("/power")
def get_power(services: ServicesDep, session: SessionDep, caller: CallerDep) -> PowerOut:
    loops = active_loops(session, caller.account_id, services.settings.loops)
    return PowerOut.model_validate(power_report(session, caller.account_id, loops))


@router.put("/power")
def put_power(
    body: LoopsIn, services: ServicesDep, session: SessionDep, caller: CallerDep
) -> PowerOut:
    set_loops(  # recorded in the settings audit (GET /api/ml/audit)
        session,
        caller.account_id,
        body.loops,
        now=services.clock.now(),
        actor=f"api:{caller.account_name}",
    )
    loops = active_loops(session, caller.account_id, services.settings.loops)
    return PowerOut.model_validate(power_report(session, caller.account_id, loops))

"""The planner: desired cluster + recorded state -> a DAG of actions. Pure: no I/O, no clock."""

from planner.build import PlanError, make_destroy_plan, make_plan

__all__ = ["PlanError", "make_plan", "make_destroy_plan"]

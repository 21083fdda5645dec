"""A project, as the path of the work started on it: `/api/v1/projects/{projectId}/…`.

Projects have no record of their own: one exists once a plan or a simulation names it.
"""

from __future__ import annotations

from starlette.requests import Request

from jobs.tasks import is_task_id
from server.errors import NotFound


def project_id(request: Request) -> str:
    """The path's projectId (a UUID), or 404."""
    value: str = request.path_params["project_id"]
    if not is_task_id(value):
        raise NotFound("no such project", code="PROJECT_NOT_FOUND")
    return value

"""Errors of the declarations service."""

from __future__ import annotations

from services.kernel.errors import Conflict, NotFound, Unprocessable


class DeclarationNotFound(NotFound):
    """No such declaration, or not one the caller may see (the two are indistinguishable on purpose)."""

    def __init__(self, declaration_id: str) -> None:
        super().__init__(f"declaration {declaration_id} not found")


class IllegalTransition(Conflict):
    """The action is not allowed in the declaration's current state."""

    title = "Action not allowed in this state"
    type_slug = "illegal-transition"

    def __init__(self, *, action: str, status: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"cannot {action} a declaration that is {status}; allowed actions: {allowed_text}",
            current_status=status,
            allowed_actions=allowed,
        )


class CustomsValueTooLarge(Unprocessable):
    """The declaration's customs value in VND is beyond what the platform assesses (duties.MAX_CUSTOMS_VALUE_VND)."""

    def __init__(self, *, total_vnd: int, limit_vnd: int, lines: list[int]) -> None:
        detail = f"the customs value is {total_vnd} VND; a declaration must stay below {limit_vnd} VND"
        where = [f"/items/{i}/customs_value" for i in lines] or ["/items"]
        super().__init__(
            detail,
            code="customs_value.too_large",
            errors=[{"pointer": p, "code": "customs_value.too_large", "detail": detail} for p in where],
        )

"""Checks of Ballast's own, run by the API fuzzer beside every built-in check.

Some answers to schema-valid requests depend on state no schema can describe (an Idempotency-Key used before with
another body, a product that is not for sale, a balance at its ceiling). The fuzzer's configuration lets those
operations answer 422; this check makes sure such a 422 is one of those state-dependent refusals and names its cause,
so a real validation bug on the same operations still fails the run.
"""

import re

import schemathesis

# (method, path) -> the error codes (and, for validation_failed, the fields) a schema-valid request may meet there.
STATE_DEPENDENT_422 = {
    ("POST", "/api/wallets/{id}/credit"): {"idempotency_key_reused": None, "validation_failed": {"amount"}},
    ("POST", "/api/wallets/{id}/debit"): {"idempotency_key_reused": None},
    ("POST", "/api/transfers"): {"idempotency_key_reused": None, "validation_failed": {"toWalletId"}},
    ("POST", "/api/orders"): {"idempotency_key_reused": None, "validation_failed": {"items", "walletId"}},
    ("POST", "/api/products/{id}/restock"): {"validation_failed": {"quantity"}},
}


# Rules of a body that JSON Schema cannot state: (method, path) -> (code, field pattern, words of the message).
STRUCTURAL_422 = {
    # One line per product: `uniqueItems` cannot say "no two items with the same productId".
    ("POST", "/api/orders"): ("validation_failed", re.compile(r"items\[\d+\]\.productId"), "appears more than once"),
}


@schemathesis.check
def state_dependent_refusals_name_their_cause(ctx, response, case):
    """A 422 to schema-valid data is only ever a refusal that the state explains, with its code and field."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 422:
        return None
    allowed = STATE_DEPENDENT_422.get((case.method.upper(), case.operation.path))
    if allowed is None:
        # Not an operation with state-dependent refusals: the built-in positive_data_acceptance check decides.
        return None
    try:
        error = response.json()["error"]
    except Exception as problem:  # noqa: BLE001 - any unreadable body is a failure here
        raise AssertionError(f"a 422 without the API's error body: {problem}") from None
    code = error.get("code")
    field = (error.get("details") or {}).get("field")
    structural = STRUCTURAL_422.get((case.method.upper(), case.operation.path))
    if structural and code == structural[0] and structural[1].fullmatch(str(field)) and structural[2] in error.get("message", ""):
        return None
    if code not in allowed:
        raise AssertionError(f"schema-valid data refused with {code!r}; only {sorted(allowed)} depend on state here")
    fields = allowed[code]
    if fields is not None and field not in fields:
        raise AssertionError(f"schema-valid data refused on field {field!r}; only {sorted(fields)} depend on state here")
    return None
